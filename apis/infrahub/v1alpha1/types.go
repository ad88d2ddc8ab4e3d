package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SyncState is the coarse state the earlier operator reported in
// status.syncState and status.deployState. Conditions carry the detail.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Stale
type SyncState string

const (
	StatePending   SyncState = "Pending"
	StateRunning   SyncState = "Running"
	StateSucceeded SyncState = "Succeeded"
	StateFailed    SyncState = "Failed"
	// StateStale means the desired state was applied but removing objects
	// that left it failed.
	StateStale SyncState = "Stale"
)

// Condition types, compatible with kstatus.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	// ConditionSuspended is True while spec.suspend is set. Ready keeps its
	// last value meanwhile, so suspending raises no readiness alert.
	ConditionSuspended = "Suspended"
	// ConditionDriftWatch is False while the watch repairing drift on a kind
	// of the manifest cannot run (typically missing list/watch RBAC).
	ConditionDriftWatch = "DriftWatch"
	// ConditionHealthy says whether every applied object reached the state
	// its spec asks for (a Deployment rolled out, a VM running, a network
	// configuration on its device); see ManagedResource.health.
	ConditionHealthy = "Healthy"
)

// MaxSummary bounds status.summary, the one-line STATUS printer column.
const MaxSummary = 80

// Health values of an object and of a summary, worst first.
const (
	HealthFailed     = "Failed"
	HealthInProgress = "InProgress"
	HealthUnknown    = "Unknown"
	HealthCurrent    = "Current"
)

// DefaultWaitTimeout is how long a wait lasts when it names no timeout.
const DefaultWaitTimeout = 5 * time.Minute

// Annotations and labels Vidra reads or writes.
const (
	// AnnotationReconcileRequestedAt asks for a reconcile now; any new value
	// triggers one and is echoed in status.lastHandledReconcileAt.
	AnnotationReconcileRequestedAt = "infrahub.operators.com/reconcile-requested-at"
	// AnnotationDeletionPolicy set to "orphan" on a VidraResource lets it be
	// deleted without touching its objects, e.g. when the cluster is gone.
	AnnotationDeletionPolicy = "vidraresource.infrahub.operators.com/deletion-policy"
	DeletionPolicyOrphan     = "orphan"
	// VidraResourceFinalizer guards the cleanup of managed objects.
	VidraResourceFinalizer = "vidraresource.infrahub.operators.com/finalizer"
	// SyncFinalizer keeps a deleted InfrahubSync or GitSync until the
	// operator has deleted its VidraResources, so that the garbage
	// collector never has them to read and delete one by one.
	SyncFinalizer = "infrahub.operators.com/vidraresources"
	// LabelSync and LabelArtifact record where a VidraResource came from.
	LabelSync     = "infrahub.operators.com/sync"
	LabelArtifact = "infrahub.operators.com/artifact-id"
	// LabelShard assigns an InfrahubSync to an operator instance (the
	// instance whose -watch-label-selector matches it); the sync copies it
	// onto its VidraResources so they go to the same instance.
	LabelShard = "sharding.infrahub.operators.com/key"

	// Markers on every object Vidra manages. The keys are the earlier
	// operator's, so objects it created are recognised as Vidra's.
	// LabelManagedBy selects managed objects for the drift watches;
	// AnnotationManagedBy is what "managed by Vidra" is decided on.
	LabelManagedBy      = "managed-by"
	AnnotationManagedBy = "managed-by"
	ManagedByVidra      = "vidra"
	// AnnotationOwnedBy lists, sorted and without duplicates, the names of
	// every VidraResource that declares the object.
	AnnotationOwnedBy = "vidraresource.infrahub.operators.com/owned-by"
	// AnnotationContentHash identifies the content the object was last
	// applied with.
	AnnotationContentHash = "vidraresource.infrahub.operators.com/content-hash"
	// AnnotationOwners is the shared-ownership record: a JSON object from
	// each owner's name to its UID and the content hash it declares, so
	// owners who agree converge, owners who disagree are a conflict rather
	// than a tug of war, and a VidraResource recreated under the same name
	// does not inherit its predecessor's objects. Objects written before it
	// existed carry only AnnotationOwnedBy and AnnotationContentHash.
	AnnotationOwners = "vidraresource.infrahub.operators.com/owners"
	// FieldManager is the server-side apply field manager for managed objects.
	FieldManager = "vidra"
)

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ihs;ihsync,categories=vidra
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.summary`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Branch",type=string,JSONPath=`.spec.source.targetBranch`
// +kubebuilder:printcolumn:name="Artifact",type=string,JSONPath=`.spec.source.artefactName`
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.health.status`
// +kubebuilder:printcolumn:name="Artifacts",type=integer,JSONPath=`.status.artifactCount`,priority=1
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.source.infrahubAPIURL`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// InfrahubSync keeps a cluster in sync with the artifacts of one name that
// Infrahub renders on a branch. For each artifact it writes one VidraResource
// holding the artifact's manifest.
type InfrahubSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says where the artifacts come from and where they go.
	// +required
	Spec InfrahubSyncSpec `json:"spec"`
	// status is written by the operator.
	// +optional
	Status InfrahubSyncStatus `json:"status,omitempty"`
}

// InfrahubSyncSpec is the desired state of an InfrahubSync.
type InfrahubSyncSpec struct {
	// source selects the Infrahub instance, branch, point in time and artifact name.
	// +required
	Source InfrahubSource `json:"source"`

	// destination selects the cluster and default namespace the artifacts are applied to.
	// +optional
	Destination Destination `json:"destination,omitempty"`

	// interval is how often Infrahub is polled for changed artifacts, e.g. "5m".
	// Defaults to the operator's --sync-interval (1m). Webhooks, when
	// configured, trigger syncs sooner.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$')`,message=`must be a duration such as 30s, 5m or 1h30m`
	Interval *metav1.Duration `json:"interval,omitempty"`

	// suspend stops syncing from Infrahub and applying to the cluster. Objects
	// already applied stay as they are; the Ready condition keeps its last
	// value and a Suspended condition says the sync is paused.
	// +optional
	// +kubebuilder:default=false
	Suspend bool `json:"suspend,omitempty"`

	// prune removes VidraResources whose artifact disappeared from Infrahub
	// and objects that disappeared from an artifact. Defaults to true.
	// +optional
	Prune *bool `json:"prune,omitempty"`

	// allowEmpty lets a listing with no artifacts remove everything this sync
	// created before. Without it an empty listing after a non-empty one
	// removes nothing and is reported as a Stalled condition, because it
	// usually means a typo or a problem in Infrahub.
	// +optional
	AllowEmpty bool `json:"allowEmpty,omitempty"`

	// adoptExisting lets Vidra take over objects that already exist in the
	// cluster and were not created by Vidra. Without it such objects are left
	// alone and reported.
	// +optional
	AdoptExisting bool `json:"adoptExisting,omitempty"`

	// wait, when present, is copied to every VidraResource of this sync:
	// their Ready condition then means applied and healthy, and so does the
	// sync's. A VidraResource stays Ready=False (reason WaitingForHealth)
	// until every object is Current, and turns Ready=False with reason
	// HealthCheckFailed, naming the objects, when one Failed or the timeout
	// passed first. "wait: {}" waits up to 5m. Without wait Ready means
	// applied, and health is reported in the Healthy condition only.
	// +optional
	Wait *Wait `json:"wait,omitempty"`
}

// Wait makes Ready mean "applied and healthy": after applying, Ready stays
// False with reason Progressing until every object is Current (a Deployment
// rolled out, a VM running, a network configuration on its device), and
// turns False with reason HealthCheckFailed, naming the objects, when an
// object Failed or the timeout passed first. "wait: {}" waits up to 5m.
type Wait struct {
	// timeout is how long after an apply the objects may take to become
	// healthy, e.g. "10m". Defaults to 5m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$')`,message=`must be a duration such as 30s, 5m or 1h30m`
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// TimeoutOrDefault returns the timeout, or DefaultWaitTimeout.
func (w *Wait) TimeoutOrDefault() time.Duration {
	if w == nil || w.Timeout == nil || w.Timeout.Duration <= 0 {
		return DefaultWaitTimeout
	}
	return w.Timeout.Duration
}

// InfrahubSource says which artifacts to read from Infrahub. The first four
// fields keep the earlier operator's names so existing manifests apply unchanged.
type InfrahubSource struct {
	// infrahubAPIURL is the base URL of Infrahub, e.g. "https://infrahub.example.com"
	// or "http://10.0.0.5:8000". IPv6 literals go in brackets.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[A-Za-z0-9._~%+-]*)*$')`,message=`must be an http(s) URL such as https://infrahub.example.com (IPv6 addresses in brackets)`
	InfrahubAPIURL string `json:"infrahubAPIURL"`

	// targetBranch is the Infrahub branch to read artifacts from.
	// +optional
	// +kubebuilder:default=main
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=250
	TargetBranch string `json:"targetBranch,omitempty"`

	// targetDate reads the artifacts as they were at a point in time, in a
	// format Infrahub accepts: an ISO-8601 date-time ("2026-08-20T10:00:00Z",
	// "2026-08-20T10:00:00.5+02:00", naive times are UTC), a date
	// ("2026-08-20", noon UTC), or an offset into the past made of numbers
	// with s, m or h units ("2h", "now-2h", "1h30m"; days are not supported).
	// This is a subset of what Infrahub parses; the operator checks the value
	// again with Infrahub's own rules and reports a bad one in the conditions.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^([1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?|([A-Za-z]+)?[-+]?([0-9]{1,6}(seconds|second|sec|s|minutes|minute|min|m|hours|hour|h))+)$')`,message=`must be an ISO 8601 date-time, a date, or a duration such as 2h`
	TargetDate string `json:"targetDate,omitempty"`

	// artefactName is the name shared by the CoreArtifacts to sync: the
	// artifact_name of an Infrahub artifact definition, e.g. "Webserver_Manifest".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ArtifactName string `json:"artefactName"`

	// credentialsSecretRef names a Secret in the operator's namespace holding
	// either "token" (an Infrahub API token) or "username" and "password".
	// Without it the operator looks, in its own namespace only, for a Secret
	// labelled infrahub-api-url=<host of infrahubAPIURL>; without either it
	// reads Infrahub anonymously.
	// +optional
	CredentialsSecretRef *LocalSecretReference `json:"credentialsSecretRef,omitempty"`

	// caBundleSecretRef names a Secret key in the operator's namespace holding
	// PEM certificates trusted, besides the system roots, for Infrahub's TLS.
	// +optional
	CABundleSecretRef *SecretKeyReference `json:"caBundleSecretRef,omitempty"`

	// insecureSkipTLSVerify turns off verification of Infrahub's TLS
	// certificate. Reported as a warning condition.
	// +optional
	InsecureSkipTLSVerify bool `json:"insecureSkipTLSVerify,omitempty"`

	// queryName, when set, lists artifacts with this stored Infrahub query
	// (called with the variable "artifactname") instead of Vidra's built-in
	// GraphQL query, for setups made for the earlier operator ("ArtifactIDs").
	// +optional
	// +kubebuilder:validation:MaxLength=253
	QueryName string `json:"queryName,omitempty"`
}

// Destination says where the objects of an artifact are applied.
type Destination struct {
	// server is the URL of the destination API server. Empty or
	// "https://kubernetes.default.svc" means the cluster the operator runs in.
	// Another value needs a kubeconfig: kubeConfigSecretRef, or a Secret in
	// the operator's namespace labelled cluster-kubeconfig=<host of server>
	// with the key "kubeconfig".
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^(https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[A-Za-z0-9._~%+-]*)*)?$')`,message=`must be empty or an http(s) URL such as https://kubernetes.default.svc`
	Server string `json:"server,omitempty"`

	// namespace is given to namespaced objects whose manifest names none.
	// Defaults to "default".
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$')`,message=`must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit`
	Namespace string `json:"namespace,omitempty"`

	// reconcileOnEvents watches the applied objects and repairs changes made
	// to them as soon as they happen, instead of at the next interval.
	// +optional
	ReconcileOnEvents bool `json:"reconcileOnEvents,omitempty"`

	// kubeConfigSecretRef names a Secret key in the operator's namespace
	// holding a self-contained kubeconfig for the destination cluster. The
	// key defaults to "kubeconfig".
	// +optional
	KubeConfigSecretRef *SecretKeyReference `json:"kubeConfigSecretRef,omitempty"`

	// serviceAccount, when set, is impersonated for every read and write on
	// the destination, so its RBAC decides what this sync may touch.
	// +optional
	ServiceAccount *ServiceAccountReference `json:"serviceAccount,omitempty"`
}

// LocalSecretReference names a Secret in the operator's namespace.
type LocalSecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// SecretKeyReference names one key of a Secret in the operator's namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key in the Secret's data. Each reference documents its default.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// ServiceAccountReference names a ServiceAccount to impersonate.
type ServiceAccountReference struct {
	// name of the ServiceAccount.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// namespace of the ServiceAccount.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
}

// InfrahubSyncStatus is the observed state of an InfrahubSync.
type InfrahubSyncStatus struct {
	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling and Stalled, in the kstatus style, and
	// Suspended while spec.suspend is set.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// summary is a one-line status for the STATUS column of kubectl get, at
	// most 80 characters; the conditions' messages carry the details.
	// +optional
	// +kubebuilder:validation:MaxLength=80
	Summary string `json:"summary,omitempty"`

	// artifacts lists what the last complete listing returned.
	// +optional
	// +listType=atomic
	Artifacts []ArtifactStatus `json:"artifacts,omitempty"`

	// artifactCount is the number of entries in artifacts.
	// +optional
	ArtifactCount int32 `json:"artifactCount,omitempty"`

	// lastSyncTime is when Infrahub was last read completely and without error.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// lastHandledReconcileAt echoes the last value of the
	// infrahub.operators.com/reconcile-requested-at annotation acted upon.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// syncState is a one-word summary kept from the earlier operator.
	// +optional
	SyncState SyncState `json:"syncState,omitempty"`

	// lastError is the message of the last failure, empty after a success.
	// +optional
	LastError string `json:"lastError,omitempty"`

	// health sums up the health of the objects of every VidraResource of
	// this sync.
	// +optional
	Health *HealthSummary `json:"health,omitempty"`
}

// HealthSummary counts objects by health.
type HealthSummary struct {
	// status is the worst health of the objects: Failed, then InProgress,
	// then Unknown, then Current (also when there are no objects).
	// +kubebuilder:validation:Enum=Current;InProgress;Failed;Unknown
	Status string `json:"status"`
	// current counts objects in the state their spec asks for.
	Current int32 `json:"current"`
	// inProgress counts objects their controllers are still working on.
	InProgress int32 `json:"inProgress"`
	// failed counts objects whose controllers reported a failure.
	Failed int32 `json:"failed"`
	// unknown counts objects not observed yet.
	Unknown int32 `json:"unknown"`
}

// ArtifactStatus is one artifact as last seen in Infrahub.
type ArtifactStatus struct {
	// id of the CoreArtifact node.
	ID string `json:"id"`
	// name of the artifact.
	// +optional
	Name string `json:"name,omitempty"`
	// target is the display label of the node the artifact was rendered for.
	// +optional
	Target string `json:"target,omitempty"`
	// status in Infrahub: Ready, Pending, Processing or Error.
	// +optional
	Status string `json:"status,omitempty"`
	// checksum (MD5) of the artifact's content.
	// +optional
	Checksum string `json:"checksum,omitempty"`
	// storageID of the stored content.
	// +optional
	StorageID string `json:"storageID,omitempty"`
	// vidraResource is the name of the VidraResource this artifact feeds.
	// +optional
	VidraResource string `json:"vidraResource,omitempty"`
}

// +kubebuilder:object:root=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// InfrahubSyncList is a list of InfrahubSyncs.
type InfrahubSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []InfrahubSync `json:"items"`
}

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=vr;vidrares,categories=vidra
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.summary`
// +kubebuilder:printcolumn:name="Objects",type=integer,JSONPath=`.status.objectCount`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.health.status`
// +kubebuilder:printcolumn:name="Sync",type=string,JSONPath=`.spec.source.sync`,priority=1
// +kubebuilder:printcolumn:name="Server",type=string,JSONPath=`.spec.destination.server`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// VidraResource holds one manifest (usually one Infrahub artifact) and applies
// every object in it to its destination, keeping an inventory of them.
type VidraResource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the manifest and where it goes.
	// +optional
	Spec VidraResourceSpec `json:"spec,omitempty"`
	// status is written by the operator.
	// +optional
	Status VidraResourceStatus `json:"status,omitempty"`
}

// VidraResourceSpec is the desired state of a VidraResource.
type VidraResourceSpec struct {
	// destination selects the cluster and default namespace.
	// +optional
	Destination Destination `json:"destination,omitempty"`

	// manifest holds the objects to apply: multi-document YAML, a JSON
	// object, a stream of JSON objects, a JSON array or a kind: List.
	// +optional
	Manifest string `json:"manifest,omitempty"`

	// manifestGzip holds the manifest gzip-compressed instead of manifest,
	// for manifests too large to keep readable in the VidraResource. At
	// most one of manifest, manifestGzip and manifestChunks is set.
	// +optional
	ManifestGzip []byte `json:"manifestGzip,omitempty"`

	// manifestChunks holds a manifest whose compressed form is still too
	// large for one object: its gzip-compressed bytes are split over
	// ConfigMaps in the operator's namespace, read in order and checked
	// against sha256 and size before anything is applied.
	// +optional
	ManifestChunks *ManifestChunks `json:"manifestChunks,omitempty"`

	// source records where the manifest came from when an InfrahubSync wrote it.
	// +optional
	Source *ArtifactSource `json:"source,omitempty"`

	// interval is how often the objects are re-applied to repair drift that
	// no watch reported. Defaults to the operator's --resource-interval (10m).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$')`,message=`must be a duration such as 30s, 5m or 1h30m`
	Interval *metav1.Duration `json:"interval,omitempty"`

	// suspend stops applying and pruning. Objects stay as they are; the
	// Ready condition keeps its last value and a Suspended condition is set.
	// +optional
	// +kubebuilder:default=false
	Suspend bool `json:"suspend,omitempty"`

	// prune deletes objects that left the manifest. Defaults to true.
	// +optional
	Prune *bool `json:"prune,omitempty"`

	// adoptExisting lets Vidra take over objects that already exist and were
	// not created by Vidra.
	// +optional
	AdoptExisting bool `json:"adoptExisting,omitempty"`

	// wait, when present, makes Ready mean applied and healthy: after an
	// apply Ready stays False (reason WaitingForHealth) until every object
	// is Current, and turns False with reason HealthCheckFailed, naming the
	// objects, when one Failed or the timeout passed first; it becomes True
	// again once they are healthy. "wait: {}" waits up to 5m. An
	// InfrahubSync sets it from its own spec.wait.
	// +optional
	Wait *Wait `json:"wait,omitempty"`
}

// ManifestChunks points at the ConfigMaps holding a large manifest.
type ManifestChunks struct {
	// namespace of the ConfigMaps: the operator's.
	// +required
	Namespace string `json:"namespace"`
	// names of the ConfigMaps, in order. Each holds one part of the
	// gzip-compressed manifest under binaryData key "part".
	// +required
	// +listType=atomic
	Names []string `json:"names"`
	// sha256 is the hex SHA-256 of the uncompressed manifest.
	// +required
	SHA256 string `json:"sha256"`
	// size is the length of the uncompressed manifest in bytes.
	// +required
	Size int64 `json:"size"`
}

// ArtifactSource records the Infrahub artifact a VidraResource was made from.
type ArtifactSource struct {
	// sync is the name of the InfrahubSync that wrote this VidraResource.
	// +optional
	Sync string `json:"sync,omitempty"`
	// artifactID is the id of the CoreArtifact node.
	// +optional
	ArtifactID string `json:"artifactID,omitempty"`
	// artifactName is the artifact's name.
	// +optional
	ArtifactName string `json:"artifactName,omitempty"`
	// target is the display label of the node the artifact was rendered for.
	// +optional
	Target string `json:"target,omitempty"`
	// branch the artifact was read from.
	// +optional
	Branch string `json:"branch,omitempty"`
	// checksum (MD5) of the manifest as Infrahub reported it.
	// +optional
	Checksum string `json:"checksum,omitempty"`
	// storageID of the content in Infrahub's object storage.
	// +optional
	StorageID string `json:"storageID,omitempty"`
}

// VidraResourceStatus is the observed state of a VidraResource.
type VidraResourceStatus struct {
	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling and Stalled, in the kstatus style, and
	// Suspended while spec.suspend is set.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// summary is a one-line status for the STATUS column of kubectl get, at
	// most 80 characters; the conditions' messages carry the details.
	// +optional
	// +kubebuilder:validation:MaxLength=80
	Summary string `json:"summary,omitempty"`

	// managedResources is the inventory: every object this VidraResource
	// applied or is about to apply, so none is ever left untracked.
	// +optional
	// +listType=atomic
	ManagedResources []ManagedResource `json:"managedResources,omitempty"`

	// objectCount is the number of entries in managedResources.
	// +optional
	ObjectCount int32 `json:"objectCount,omitempty"`

	// deployState is a one-word summary kept from the earlier operator.
	// +optional
	DeployState SyncState `json:"deployState,omitempty"`

	// lastError is the message of the last failure, empty after a success.
	// +optional
	LastError string `json:"lastError,omitempty"`

	// lastSyncTime is when the manifest was last applied completely.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// lastAppliedChecksum identifies the manifest and settings last applied
	// completely.
	// +optional
	LastAppliedChecksum string `json:"lastAppliedChecksum,omitempty"`

	// lastHandledReconcileAt echoes the last value of the
	// infrahub.operators.com/reconcile-requested-at annotation acted upon.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// appliedDestination is the destination the inventory was last applied
	// to. When spec.destination changes, objects are applied to the new
	// destination and then removed from this one.
	// +optional
	AppliedDestination *Destination `json:"appliedDestination,omitempty"`

	// health sums up the health of the objects in managedResources. It is
	// kept up to date from the watches on the objects, between applies too.
	// +optional
	Health *HealthSummary `json:"health,omitempty"`
}

// ManagedResource identifies one object in the inventory. The first four
// fields keep the earlier operator's shape.
type ManagedResource struct {
	// apiVersion of the object, e.g. "apps/v1".
	APIVersion string `json:"apiVersion"`
	// kind of the object.
	Kind string `json:"kind"`
	// name of the object.
	Name string `json:"name"`
	// namespace of the object; empty for cluster-scoped objects.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// group of the object's API, empty for the core group.
	// +optional
	Group string `json:"group,omitempty"`
	// version of the object's API.
	// +optional
	Version string `json:"version,omitempty"`
	// resource is the plural resource name, so the object can be removed even
	// when its kind is no longer served.
	// +optional
	Resource string `json:"resource,omitempty"`
	// server is the API server the object lives on; empty for the local cluster.
	// +optional
	Server string `json:"server,omitempty"`
	// health of the object as last observed: Current (as its spec asks),
	// InProgress (its controller is working on it), Failed (its controller
	// reported a failure) or Unknown (not observed).
	// +optional
	Health string `json:"health,omitempty"`
	// healthMessage says why, e.g. "2 of 3 replicas available".
	// +optional
	HealthMessage string `json:"healthMessage,omitempty"`
}

// +kubebuilder:object:root=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// VidraResourceList is a list of VidraResources.
type VidraResourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VidraResource `json:"items"`
}
