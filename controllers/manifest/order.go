package manifest

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Ranks of Order. Gaps leave room for later kinds.
const (
	rankCRD              = 0
	rankNamespace        = 10
	rankClusterRole      = 20
	rankClusterBinding   = 21
	rankClusterClass     = 30 // PriorityClass, StorageClass, IngressClass, ...
	rankPersistentVolume = 40
	rankQuota            = 50 // ResourceQuota, LimitRange: before anything they limit
	rankNetworkPolicy    = 55 // before pods, so they never run unprotected
	rankServiceAccount   = 60
	rankRole             = 61
	rankRoleBinding      = 62
	rankConfigMap        = 70
	rankSecret           = 71
	rankClaim            = 72
	rankService          = 80
	rankEndpoints        = 81
	rankDisruption       = 85
	rankWorkload         = 90
	rankAutoscaler       = 95
	rankIngress          = 100
	// RankUnknown is the rank of kinds Order does not know, custom
	// resources mostly: they come after everything they could depend on.
	RankUnknown       = 500
	rankAPIService    = 900
	rankAdmission     = 910 // admission policies
	rankWebhookConfig = 920 // last: a webhook whose Service is not up yet would reject everything after it
)

var ranks = map[schema.GroupKind]int{
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}: rankCRD,
	{Kind: "Namespace"}: rankNamespace,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        rankClusterRole,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: rankClusterBinding,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:              rankClusterClass,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                  rankClusterClass,
	{Group: "storage.k8s.io", Kind: "VolumeAttributesClass"}:         rankClusterClass,
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                     rankClusterClass,
	{Group: "snapshot.storage.k8s.io", Kind: "VolumeSnapshotClass"}:  rankClusterClass,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:               rankClusterClass,
	{Group: "gateway.networking.k8s.io", Kind: "GatewayClass"}:       rankClusterClass,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                     rankClusterClass,
	{Kind: "PersistentVolume"}:                                       rankPersistentVolume,
	{Kind: "ResourceQuota"}:                                          rankQuota,
	{Kind: "LimitRange"}:                                             rankQuota,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:              rankNetworkPolicy,
	{Kind: "ServiceAccount"}:                                         rankServiceAccount,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               rankRole,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        rankRoleBinding,
	{Kind: "ConfigMap"}:                                              rankConfigMap,
	{Kind: "Secret"}:                                                 rankSecret,
	{Kind: "PersistentVolumeClaim"}:                                  rankClaim,
	{Kind: "Service"}:                                                rankService,
	{Kind: "Endpoints"}:                                              rankEndpoints,
	{Group: "discovery.k8s.io", Kind: "EndpointSlice"}:               rankEndpoints,
	{Group: "policy", Kind: "PodDisruptionBudget"}:                   rankDisruption,
	{Kind: "Pod"}:                                                                     rankWorkload,
	{Kind: "ReplicationController"}:                                                   rankWorkload,
	{Group: "apps", Kind: "ReplicaSet"}:                                               rankWorkload,
	{Group: "apps", Kind: "Deployment"}:                                               rankWorkload,
	{Group: "apps", Kind: "DaemonSet"}:                                                rankWorkload,
	{Group: "apps", Kind: "StatefulSet"}:                                              rankWorkload,
	{Group: "batch", Kind: "Job"}:                                                     rankWorkload,
	{Group: "batch", Kind: "CronJob"}:                                                 rankWorkload,
	{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}:                           rankAutoscaler,
	{Group: "networking.k8s.io", Kind: "Ingress"}:                                     rankIngress,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             rankAPIService,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        rankAdmission,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: rankAdmission,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicy"}:          rankAdmission,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicyBinding"}:   rankAdmission,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     rankWebhookConfig,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   rankWebhookConfig,
}

// Order is the apply rank of a kind: lower goes first. CRDs and Namespaces
// come first, then cluster-wide prerequisites, RBAC, configuration,
// Services, workloads, Ingresses, unknown kinds (RankUnknown) and at the
// very end admission webhooks and policies. The group is matched too, so a
// custom "Service" (Knative's) is not taken for the core one.
func Order(kind, group string) int {
	if r, ok := ranks[schema.GroupKind{Group: group, Kind: kind}]; ok {
		return r
	}
	return RankUnknown
}

func keyRank(k Key) int { return Order(k.Kind, k.Group) }

func docRank(d Document) int { return keyRank(d.Key()) }

// Sort puts documents in apply order, keeping the manifest's order within a
// rank.
func Sort(docs []Document) {
	slices.SortStableFunc(docs, func(a, b Document) int { return docRank(a) - docRank(b) })
}

// SortForDeletion puts documents in exactly the reverse of apply order:
// webhooks go first, so they cannot block the deletions after them, and
// CRDs and Namespaces last, after what lives in them.
func SortForDeletion(docs []Document) {
	slices.Reverse(docs)
	slices.SortStableFunc(docs, func(a, b Document) int { return docRank(b) - docRank(a) })
}

// SortKeysForDeletion orders keys like SortForDeletion, for pruning objects
// that are known only by their inventory entries.
func SortKeysForDeletion(keys []Key) {
	slices.Reverse(keys)
	slices.SortStableFunc(keys, func(a, b Key) int { return keyRank(b) - keyRank(a) })
}
