// Package v1alpha1 holds the infrahub.operators.com/v1alpha1 API: InfrahubSync,
// which says which Infrahub artifacts go to which cluster, and VidraResource,
// which holds one artifact's manifest and the inventory of what it applied.
//
// +k8s:deepcopy-gen=package
// +groupName=infrahub.operators.com
// +kubebuilder:object:generate=true
package v1alpha1
