package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GitSync layouts: how the files under spec.paths map onto VidraResources.
const (
	// GitLayoutDirectory writes one VidraResource per directory holding
	// manifests; a directory's files are applied together.
	GitLayoutDirectory = "Directory"
	// GitLayoutFile writes one VidraResource per manifest file.
	GitLayoutFile = "File"
)

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=gs;gitsyncs,categories=vidra
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.summary`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Commit",type=string,JSONPath=`.status.shortCommit`
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.health.status`
// +kubebuilder:printcolumn:name="Units",type=integer,JSONPath=`.status.unitCount`,priority=1
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// GitSync keeps a cluster in sync with manifests kept in a Git repository.
// For each directory (or file) under its paths it writes one VidraResource
// holding the manifests, exactly as an InfrahubSync does for an artifact.
type GitSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which repository, ref and paths to read and where they go.
	// +required
	Spec GitSyncSpec `json:"spec"`
	// status is written by the operator.
	// +optional
	Status GitSyncStatus `json:"status,omitempty"`
}

// GitSyncSpec is the desired state of a GitSync.
type GitSyncSpec struct {
	// url of the repository: https://host/path (http:// too, for a server
	// on a trusted network), ssh://[user@]host[:port]/path or the short SSH
	// form user@host:path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^(https?://[^\s/@]+(@[^\s/]+)?(/[^\s]*)?|ssh://([^\s/@]+@)?[^\s/@]+(:[0-9]{1,5})?/[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+)$')`,message=`must be a Git URL: https://host/path, ssh://user@host/path or user@host:path`
	URL string `json:"url"`

	// ref is the branch, tag, semver range or commit to read; exactly one.
	// +required
	Ref GitRef `json:"ref"`

	// paths are the directories (or files) of the repository to read,
	// relative to its root, e.g. "apps/web". "." is the whole repository.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:items:XValidation:rule=`!self.startsWith('/') && !self.matches(r'(^|/)\.\.(/|$)')`,message=`must be a path relative to the repository root, without '..'`
	Paths []string `json:"paths"`

	// layout says how the files under paths become VidraResources:
	// "Directory" (default) writes one VidraResource per directory holding
	// .yaml, .yml or .json files, with every manifest of that directory;
	// "File" writes one VidraResource per file.
	// +optional
	// +kubebuilder:default=Directory
	// +kubebuilder:validation:Enum=Directory;File
	Layout string `json:"layout,omitempty"`

	// secretRef names a Secret in the operator's namespace with the
	// credentials: "token", or "username" and "password", for HTTPS;
	// "identity" (a private key) and "known_hosts" for SSH. known_hosts is
	// required for SSH: a host key it does not list is refused.
	// +optional
	SecretRef *LocalSecretReference `json:"secretRef,omitempty"`

	// destination selects the cluster and default namespace the manifests are applied to.
	// +optional
	Destination Destination `json:"destination,omitempty"`

	// interval is how often the repository is asked where the ref points,
	// e.g. "5m"; nothing is downloaded while it points at the same commit.
	// Defaults to the operator's --git-interval (1m). Push webhooks, when
	// configured, trigger syncs sooner.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$')`,message=`must be a duration such as 30s, 5m or 1h30m`
	Interval *metav1.Duration `json:"interval,omitempty"`

	// suspend stops reading the repository and applying to the cluster.
	// Objects already applied stay as they are.
	// +optional
	// +kubebuilder:default=false
	Suspend bool `json:"suspend,omitempty"`

	// prune removes VidraResources whose directory or file disappeared from
	// the repository, and objects that disappeared from a manifest.
	// Defaults to true.
	// +optional
	Prune *bool `json:"prune,omitempty"`

	// allowEmpty lets a commit with no manifests under paths remove
	// everything this sync created before. Without it such a commit removes
	// nothing and is reported as a Stalled condition.
	// +optional
	AllowEmpty bool `json:"allowEmpty,omitempty"`

	// adoptExisting lets Vidra take over objects that already exist in the
	// cluster and were not created by Vidra.
	// +optional
	AdoptExisting bool `json:"adoptExisting,omitempty"`

	// wait, when present, is copied to every VidraResource of this sync, as
	// for an InfrahubSync: Ready then means applied and healthy.
	// +optional
	Wait *Wait `json:"wait,omitempty"`
}

// GitRef names what to read of a repository: exactly one of branch, tag,
// semver or commit.
// +kubebuilder:validation:XValidation:rule=`[has(self.branch), has(self.tag), has(self.semver), has(self.commit)].filter(x, x).size() == 1`,message=`set exactly one of branch, tag, semver or commit`
type GitRef struct {
	// branch to follow, e.g. "main".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=250
	Branch string `json:"branch,omitempty"`
	// tag to read, e.g. "v1.2.0".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=250
	Tag string `json:"tag,omitempty"`
	// semver is a range such as ">=1.2.0 <2.0.0"; the highest tag in it is read.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=250
	SemVer string `json:"semver,omitempty"`
	// commit is a full 40-character commit id to read.
	// +optional
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[0-9a-f]{40}$')`,message=`must be a full 40-character lowercase commit id`
	Commit string `json:"commit,omitempty"`
}

// GitSyncStatus is the observed state of a GitSync.
type GitSyncStatus struct {
	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling and Stalled, in the kstatus style, and
	// Suspended while spec.suspend is set.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// summary is a one-line status for the STATUS column of kubectl get.
	// +optional
	// +kubebuilder:validation:MaxLength=80
	Summary string `json:"summary,omitempty"`

	// resolvedRef is the full name of the ref that was read, e.g.
	// refs/heads/main or refs/tags/v1.2.0.
	// +optional
	ResolvedRef string `json:"resolvedRef,omitempty"`

	// commit is the id of the commit applied last.
	// +optional
	Commit string `json:"commit,omitempty"`

	// shortCommit is the first 12 characters of commit, for kubectl get.
	// +optional
	ShortCommit string `json:"shortCommit,omitempty"`

	// commitMessage is the first line of the commit's message.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	CommitMessage string `json:"commitMessage,omitempty"`

	// units lists the directories or files of the last commit read.
	// +optional
	// +listType=atomic
	Units []GitUnitStatus `json:"units,omitempty"`

	// unitCount is the number of entries in units.
	// +optional
	UnitCount int32 `json:"unitCount,omitempty"`

	// lastSyncTime is when the repository was last read completely and without error.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// lastHandledReconcileAt echoes the last value of the
	// infrahub.operators.com/reconcile-requested-at annotation acted upon.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// lastError is the message of the last failure, empty after a success.
	// +optional
	LastError string `json:"lastError,omitempty"`

	// health sums up the health of the objects of every VidraResource of
	// this sync.
	// +optional
	Health *HealthSummary `json:"health,omitempty"`
}

// GitUnitStatus is one directory or file of the repository.
type GitUnitStatus struct {
	// path of the directory or file, relative to the repository root.
	Path string `json:"path"`
	// files is the number of manifest files the unit holds.
	// +optional
	Files int32 `json:"files,omitempty"`
	// checksum (MD5) of the unit's manifest, as written to its VidraResource.
	// +optional
	Checksum string `json:"checksum,omitempty"`
	// vidraResource is the name of the VidraResource this unit feeds.
	// +optional
	VidraResource string `json:"vidraResource,omitempty"`
}

// +kubebuilder:object:root=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// GitSyncList is a list of GitSyncs.
type GitSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitSync `json:"items"`
}
