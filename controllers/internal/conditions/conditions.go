// Package conditions sets the kstatus-style Ready, Reconciling and Stalled
// conditions consistently on both kinds.
package conditions

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// maxMessage keeps condition messages readable in kubectl and small in etcd.
const maxMessage = 2048

// Result is the outcome of one reconcile, turned into conditions.
type Result struct {
	// Ready is true when the object's desired state is fully in place.
	Ready bool
	// Progressing is true when work is under way and will continue by itself.
	Progressing bool
	// Stalled is true when nothing will improve without a change by the user.
	Stalled bool
	// Suspended leaves Ready, Reconciling and Stalled as they were and sets
	// the Suspended condition: pausing is not a failure.
	Suspended bool
	Reason    string
	Message   string
	// Summary is the one-line status.summary; empty derives it from Message.
	Summary string
}

// Apply sets Ready, Reconciling and Stalled on conds from r, and Suspended
// while r is a suspension. Transition times change only when a condition's
// status changes.
func Apply(conds *[]metav1.Condition, generation int64, r Result) {
	msg := Truncate(r.Message)
	if r.Suspended {
		meta.SetStatusCondition(conds, metav1.Condition{
			Type: v1alpha1.ConditionSuspended, Status: metav1.ConditionTrue, Reason: r.Reason, Message: msg, ObservedGeneration: generation,
		})
		if meta.FindStatusCondition(*conds, v1alpha1.ConditionReady) == nil {
			// Suspended before the first pass: nothing is known yet.
			meta.SetStatusCondition(conds, metav1.Condition{
				Type: v1alpha1.ConditionReady, Status: metav1.ConditionUnknown, Reason: r.Reason, Message: msg, ObservedGeneration: generation,
			})
		}
		return
	}
	meta.RemoveStatusCondition(conds, v1alpha1.ConditionSuspended)
	ready := metav1.ConditionFalse
	if r.Ready {
		ready = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: ready, Reason: r.Reason, Message: msg, ObservedGeneration: generation,
	})
	setOrRemove(conds, v1alpha1.ConditionReconciling, r.Progressing, generation, r.Reason, msg)
	setOrRemove(conds, v1alpha1.ConditionStalled, r.Stalled, generation, r.Reason, msg)
}

// setOrRemove follows kstatus: abnormal-true conditions are present only
// while true.
func setOrRemove(conds *[]metav1.Condition, typ string, on bool, generation int64, reason, msg string) {
	if !on {
		meta.RemoveStatusCondition(conds, typ)
		return
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: metav1.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: generation,
	})
}

// Truncate shortens a message to what a condition should carry.
func Truncate(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	return msg[:maxMessage-3] + "..."
}

// Summary returns the one-line status.summary for r: r.Summary, else the
// first clause of the message (up to ": " or "; "), at most
// v1alpha1.MaxSummary characters.
func Summary(r Result) string {
	s := r.Summary
	if s == "" {
		s = r.Message
		for _, sep := range []string{"; ", ": ", "\n"} {
			if i := strings.Index(s, sep); i > 0 {
				s = s[:i]
			}
		}
	}
	return Shorten(strings.TrimSpace(s), v1alpha1.MaxSummary)
}

// Shorten cuts s to at most max characters, at a word boundary when one is
// near, ending in "...".
func Shorten(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	runes := []rune(s)[:max-3]
	cut := string(runes)
	if i := strings.LastIndexByte(cut, ' '); i > len(cut)/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:") + "..."
}

// Count formats n with a noun in the singular or plural: "1 artifact",
// "4 artifacts". plural may be empty for nouns that take an "s".
func Count(n int, singular, plural string) string {
	if n == 1 {
		return "1 " + singular
	}
	if plural == "" {
		plural = singular + "s"
	}
	return fmt.Sprintf("%d %s", n, plural)
}

// State maps a result onto the earlier operator's one-word state.
func State(r Result) v1alpha1.SyncState {
	switch {
	case r.Ready:
		return v1alpha1.StateSucceeded
	case r.Progressing:
		return v1alpha1.StateRunning
	default:
		return v1alpha1.StateFailed
	}
}
