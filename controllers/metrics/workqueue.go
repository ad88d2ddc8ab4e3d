package metrics

import "k8s.io/client-go/util/workqueue"

// Workqueue metric names, the ones Kubernetes components use, labelled by
// queue name.
const (
	WorkqueueDepth                   = "workqueue_depth"
	WorkqueueAdds                    = "workqueue_adds_total"
	WorkqueueQueueDuration           = "workqueue_queue_duration_seconds"
	WorkqueueWorkDuration            = "workqueue_work_duration_seconds"
	WorkqueueUnfinishedWork          = "workqueue_unfinished_work_seconds"
	WorkqueueLongestRunningProcessor = "workqueue_longest_running_processor_seconds"
	WorkqueueRetries                 = "workqueue_retries_total"
)

// WorkqueueProvider is a workqueue.MetricsProvider backed by a Registry.
// Install it with workqueue.SetProvider before any named queue is created
// (that is, before operator.New).
type WorkqueueProvider struct {
	depth, unfinished, longest *GaugeVec
	adds, retries              *CounterVec
	latency, work              *HistogramVec
}

var _ workqueue.MetricsProvider = (*WorkqueueProvider)(nil)

// NewWorkqueueProvider registers the workqueue families in r.
func NewWorkqueueProvider(r *Registry) *WorkqueueProvider {
	// 10ns to 1000s, as Kubernetes components do.
	buckets := ExponentialBuckets(10e-9, 10, 12)
	return &WorkqueueProvider{
		depth:      r.NewGaugeVec(WorkqueueDepth, "Current depth of the workqueue.", "name"),
		adds:       r.NewCounterVec(WorkqueueAdds, "Total number of adds handled by the workqueue.", "name"),
		latency:    r.NewHistogramVec(WorkqueueQueueDuration, "How long in seconds an item stays in the workqueue before being requested.", buckets, "name"),
		work:       r.NewHistogramVec(WorkqueueWorkDuration, "How long in seconds processing an item from the workqueue takes.", buckets, "name"),
		unfinished: r.NewGaugeVec(WorkqueueUnfinishedWork, "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads.", "name"),
		longest:    r.NewGaugeVec(WorkqueueLongestRunningProcessor, "How many seconds has the longest running processor for the workqueue been running.", "name"),
		retries:    r.NewCounterVec(WorkqueueRetries, "Total number of retries handled by the workqueue.", "name"),
	}
}

func (p *WorkqueueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.depth.With(name)
}

func (p *WorkqueueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.adds.With(name)
}

func (p *WorkqueueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.latency.With(name)
}

func (p *WorkqueueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.work.With(name)
}

func (p *WorkqueueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.unfinished.With(name)
}

func (p *WorkqueueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.longest.With(name)
}

func (p *WorkqueueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.retries.With(name)
}
