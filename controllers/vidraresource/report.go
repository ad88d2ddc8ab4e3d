package vidraresource

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/apply"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/internal/conditions"
)

// Reasons of the destination and drift-watch reports.
const (
	// ReasonClusterCredentials: the destination refuses the kubeconfig's
	// credentials (401), or the kubeconfig cannot be found or used.
	ReasonClusterCredentials = "ClusterCredentials"
)

// kubeconfigSource names, without its contents, where the destination's
// kubeconfig comes from.
func kubeconfigSource(dest v1alpha1.Destination) string {
	if ref := dest.KubeConfigSecretRef; ref != nil {
		key := ref.Key
		if key == "" {
			key = cluster.DefaultKubeconfigKey
		}
		return fmt.Sprintf("Secret %s (key %q)", ref.Name, key)
	}
	if cluster.IsLocal(dest.Server) {
		return "the operator's own ServiceAccount"
	}
	return "the Secret labelled " + cluster.LegacyKubeconfigLabel + "=" + cluster.LabelValueForHost(hostOf(dest.Server))
}

func hostOf(server string) string {
	s := server
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			return s[1:i]
		}
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}

func clusterName(dest v1alpha1.Destination) string {
	if cluster.IsLocal(dest.Server) {
		return "local"
	}
	return dest.Server
}

// targetFailure reports a destination that cannot be used at all: its
// kubeconfig is missing or unusable, or it is in its unreachable window.
func targetFailure(dest v1alpha1.Destination, err error) conditions.Result {
	name := clusterName(dest)
	if cluster.IsUnreachable(err) {
		return conditions.Result{Reason: ReasonClusterUnavailable,
			Summary: "Cluster " + name + " unreachable",
			Message: fmt.Sprintf("Cluster %s is unreachable with the kubeconfig from %s; nothing was applied: %v", name, kubeconfigSource(dest), err)}
	}
	return conditions.Result{Reason: ReasonClusterCredentials,
		Summary: "No usable kubeconfig for cluster " + name,
		Message: fmt.Sprintf("Cluster %s: no usable kubeconfig from %s; nothing was applied: %v", name, kubeconfigSource(dest), err)}
}

// destinationFailure turns object errors that are really about the whole
// destination into one report: any 401 means the cluster refuses the
// kubeconfig's credentials; only connection failures mean it is unreachable.
// ok is false when the errors are about individual objects.
func destinationFailure(dest v1alpha1.Destination, errs []error, total int) (r conditions.Result, ok bool) {
	if len(errs) == 0 {
		return r, false
	}
	name := clusterName(dest)
	for _, err := range errs {
		if apierrors.IsUnauthorized(err) {
			return conditions.Result{Reason: ReasonClusterCredentials,
				Summary: "Cluster " + name + " refuses the credentials",
				Message: fmt.Sprintf("Cluster %s refuses the credentials of the kubeconfig from %s (401 Unauthorized); %s not applied",
					name, kubeconfigSource(dest), conditions.Count(total, "object was", "objects were"))}, true
		}
	}
	for _, err := range errs {
		if !cluster.IsUnreachable(err) {
			return r, false
		}
	}
	return conditions.Result{Reason: ReasonClusterUnavailable,
		Summary: "Cluster " + name + " unreachable",
		Message: fmt.Sprintf("Cluster %s is unreachable with the kubeconfig from %s; %s not applied: %v",
			name, kubeconfigSource(dest), conditions.Count(len(errs), "object was", "objects were"), errs[0])}, true
}

func reasonOf(err error) string {
	if r := apierrors.ReasonForError(err); r != metav1.StatusReasonUnknown {
		return string(r)
	}
	return err.Error()
}

// logChange writes the one info line a change deserves: what was applied,
// pruned or repaired.
func logChange(logger klog.Logger, vr *v1alpha1.VidraResource, out *outcome) {
	if !out.changed() {
		return
	}
	msg := "VidraResource applied"
	if vr.Status.LastAppliedChecksum == manifestChecksum(vr) && out.count(apply.Created)+out.count(apply.Configured) > 0 {
		// Same manifest as last applied: the objects had drifted.
		msg = "VidraResource repaired drift"
	}
	logger.Info(msg, "vidraResource", vr.Name, "changes", changeSummary(out))
}
