package infrahub

import "context"

// Priority is the X-Priority class of a request. Under load Infrahub 1.11
// sheds the lower classes first; a request without the header counts as
// medium. Older releases ignore the header.
type Priority string

// Priority classes.
const (
	PriorityHigh   Priority = "high"
	PriorityMedium Priority = "medium"
	PriorityLow    Priority = "low"
)

// HeaderPriority is the request header carrying the Priority.
const HeaderPriority = "X-Priority"

type priorityKey struct{}

// WithPriority returns a context whose Infrahub requests carry p, e.g.
// PriorityLow for background polling. An empty p sends no header.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityFrom returns the Priority WithPriority put in ctx, "" if none.
func PriorityFrom(ctx context.Context) Priority { return priorityOf(ctx) }

func priorityOf(ctx context.Context) Priority {
	p, _ := ctx.Value(priorityKey{}).(Priority)
	return p
}
