package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// The earlier operator's ConfigMap keys.
const (
	keySyncInterval         = "requeueSyncAfter"
	keyResourceInterval     = "requeueResourcesAfter"
	keyResourceIntervalTypo = "requeueResourceAfter" // what the earlier CLI writes
	keyQueryName            = "queryName"
	keyEventBased           = "eventBasedReconcile"
)

// intervalOff stands for "0": the earlier operator's way to turn periodic
// resync off. Vidra keeps a (very long) interval as a safety net.
const intervalOff = 365 * 24 * time.Hour

// configProblem is a rejected ConfigMap value, reported in the log and as a
// Warning Event on the ConfigMap.
type configProblem struct {
	key, value, reason string
}

func (p configProblem) String() string {
	return fmt.Sprintf("key %s: %s (value %q ignored)", p.key, p.reason, p.value)
}

// applyConfigMap applies the earlier operator's keys to o, except those whose
// flag was given on the command line. Missing keys keep the defaults; a bad
// value is rejected with a log line and the default kept. It never fails.
func applyConfigMap(logger klog.Logger, cm *corev1.ConfigMap, o *options) []configProblem {
	where := cm.Namespace + "/" + cm.Name
	logger = logger.WithValues("configMap", where)
	var problems []configProblem
	reject := func(key, value, reason string, keeping any) {
		p := configProblem{key: key, value: value, reason: reason}
		problems = append(problems, p)
		logger.Error(nil, "Invalid value in the operator ConfigMap; keeping the current setting", "key", key, "value", value, "reason", reason, "keeping", keeping)
	}
	fromFlag := func(key, flagName string) bool {
		if o.explicit[flagName] {
			logger.Info("ConfigMap key ignored: its flag was given on the command line", "key", key, "flag", "-"+flagName)
			return true
		}
		return false
	}
	duration := func(key, flagName, value string, target *time.Duration) {
		if fromFlag(key, flagName) {
			return
		}
		v := strings.TrimSpace(value)
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			reject(key, value, "not a duration (want e.g. 30s, 5m, 1h)", target.String())
		case d < 0:
			reject(key, value, "negative duration", target.String())
		case d == 0:
			*target = intervalOff
			logger.Info("Periodic resync turned off by the ConfigMap; drift watches and webhooks still trigger reconciles", "key", key, "interval", intervalOff.String())
		default:
			*target = d
			logger.Info("Setting from the ConfigMap", "key", key, "value", d.String())
		}
	}

	if v, ok := cm.Data[keySyncInterval]; ok {
		duration(keySyncInterval, flagSyncInterval, v, &o.syncInterval)
	}
	plural, hasPlural := cm.Data[keyResourceInterval]
	singular, hasSingular := cm.Data[keyResourceIntervalTypo]
	switch {
	case hasPlural && hasSingular:
		logger.Info("ConfigMap has both spellings; using the plural one", "used", keyResourceInterval, "ignored", keyResourceIntervalTypo)
		duration(keyResourceInterval, flagResourceInterval, plural, &o.resourceInterval)
	case hasPlural:
		duration(keyResourceInterval, flagResourceInterval, plural, &o.resourceInterval)
	case hasSingular:
		logger.Info("Accepting the earlier CLI's misspelt key as an alias", "key", keyResourceIntervalTypo, "for", keyResourceInterval)
		duration(keyResourceIntervalTypo, flagResourceInterval, singular, &o.resourceInterval)
	}
	if v, ok := cm.Data[keyQueryName]; ok && !fromFlag(keyQueryName, flagQueryName) {
		name := strings.TrimSpace(v)
		if err := checkQueryName(name); err != nil {
			reject(keyQueryName, v, err.Error(), o.queryName)
		} else {
			o.queryName = name
			logger.Info("Setting from the ConfigMap", "key", keyQueryName, "value", name)
		}
	}
	if v, ok := cm.Data[keyEventBased]; ok && !fromFlag(keyEventBased, flagReconcileOnEvents) {
		b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v)))
		if err != nil {
			reject(keyEventBased, v, "not a boolean (want true or false)", o.reconcileOnEvents)
		} else {
			o.reconcileOnEvents = b
			logger.Info("Setting from the ConfigMap", "key", keyEventBased, "value", b)
		}
	}

	var unknown []string
	for k := range cm.Data {
		switch k {
		case keySyncInterval, keyResourceInterval, keyResourceIntervalTypo, keyQueryName, keyEventBased:
		default:
			unknown = append(unknown, k)
		}
	}
	for k := range cm.BinaryData {
		unknown = append(unknown, k)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		logger.Info("ConfigMap has keys Vidra does not know; they are ignored (typo?)", "keys", unknown,
			"known", []string{keySyncInterval, keyResourceInterval, keyQueryName, keyEventBased})
	}
	return problems
}

// readConfigMap fetches the operator's ConfigMap. A missing ConfigMap, or one
// the operator may not read, is not an error: the defaults apply. Other
// errors are retried for a while (the API server may still be starting).
func readConfigMap(ctx context.Context, logger klog.Logger, kube kubernetes.Interface, namespace, name string) (*corev1.ConfigMap, error) {
	var cm *corev1.ConfigMap
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, time.Second, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		got, err := kube.CoreV1().ConfigMaps(namespace).Get(rctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			cm = got
			return true, nil
		case apierrors.IsNotFound(err):
			legacy, lerr := findLegacyConfigMap(rctx, logger, kube, namespace)
			if lerr != nil {
				lastErr = lerr
				return false, nil
			}
			if legacy != nil {
				logger.Info("DEPRECATED: using the earlier operator's ConfigMap, found by its label; rename it or copy its keys to the operator ConfigMap, this fallback will go",
					"configMap", namespace+"/"+legacy.Name, "label", legacyConfigLabel+"="+legacyConfigValue, "expected", namespace+"/"+name)
				cm = legacy
				return true, nil
			}
			logger.Info("No operator ConfigMap; using flags and defaults", "configMap", namespace+"/"+name)
			return true, nil
		case apierrors.IsForbidden(err):
			logger.Error(err, "Not allowed to read the operator ConfigMap; using flags and defaults", "configMap", namespace+"/"+name)
			return true, nil
		}
		lastErr = err
		logger.Info("Reading the operator ConfigMap failed; retrying", "configMap", namespace+"/"+name, "err", err.Error())
		return false, nil
	})
	if err != nil {
		if lastErr != nil {
			err = lastErr
		}
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", namespace, name, err)
	}
	return cm, nil
}

// The earlier operator found its ConfigMap by this label, whatever its name.
const (
	legacyConfigLabel = "app"
	legacyConfigValue = "vidra"
)

// findLegacyConfigMap returns the earlier operator's ConfigMap (label
// app: vidra) in namespace, nil when there is none or it may not be listed.
// With several, the oldest is used (the one the earlier install created).
func findLegacyConfigMap(ctx context.Context, logger klog.Logger, kube kubernetes.Interface, namespace string) (*corev1.ConfigMap, error) {
	list, err := kube.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{LabelSelector: legacyConfigLabel + "=" + legacyConfigValue})
	switch {
	case apierrors.IsForbidden(err):
		return nil, nil
	case err != nil:
		return nil, err
	case len(list.Items) == 0:
		return nil, nil
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool {
		ti, tj := items[i].CreationTimestamp, items[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return items[i].Name < items[j].Name
	})
	if len(items) > 1 {
		names := make([]string, len(items))
		for i := range items {
			names[i] = items[i].Name
		}
		logger.Info("Several ConfigMaps carry the earlier operator's label; using the oldest", "configMaps", names, "using", items[0].Name)
	}
	return &items[0], nil
}

// reportConfigProblems records a Warning Event on the ConfigMap, so
// `kubectl describe configmap` shows what was rejected. Best effort.
func reportConfigProblems(ctx context.Context, logger klog.Logger, kube kubernetes.Interface, cm *corev1.ConfigMap, problems []configProblem, controller, instance string) {
	if len(problems) == 0 {
		return
	}
	notes := make([]string, len(problems))
	for i, p := range problems {
		notes[i] = p.String()
	}
	note := "Rejected operator settings: " + strings.Join(notes, "; ")
	if len(note) > 1024 {
		note = note[:1021] + "..."
	}
	now := metav1.NewMicroTime(time.Now())
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			// The naming scheme of client-go's recorders: object name and
			// a unique hex suffix.
			Name:      fmt.Sprintf("%s.%x", cm.Name, time.Now().UnixNano()),
			Namespace: cm.Namespace,
		},
		EventTime:           now,
		ReportingController: controller,
		ReportingInstance:   instance,
		Action:              "ReadConfig",
		Reason:              "InvalidConfig",
		Regarding: corev1.ObjectReference{
			APIVersion:      "v1",
			Kind:            "ConfigMap",
			Namespace:       cm.Namespace,
			Name:            cm.Name,
			UID:             cm.UID,
			ResourceVersion: cm.ResourceVersion,
		},
		Note: note,
		Type: corev1.EventTypeWarning,
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := kube.EventsV1().Events(cm.Namespace).Create(rctx, ev, metav1.CreateOptions{}); err != nil {
		logger.Info("Could not record an Event for the rejected ConfigMap values", "err", err.Error())
	}
}
