package manifest

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

func keys(docs []Document) []string {
	out := make([]string, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.Key().String())
	}
	return out
}

const unordered = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: check}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: shop}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: shop}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: fn, namespace: shop}
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crb}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cr}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w2, namespace: shop}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg2, namespace: shop}
`

var applyOrder = []string{
	"CustomResourceDefinition.apiextensions.k8s.io widgets.example.com",
	"Namespace shop",
	"ClusterRole.rbac.authorization.k8s.io cr",
	"ClusterRoleBinding.rbac.authorization.k8s.io crb",
	"PriorityClass.scheduling.k8s.io high",
	"ServiceAccount shop/sa",
	"Role.rbac.authorization.k8s.io shop/r",
	"RoleBinding.rbac.authorization.k8s.io shop/rb",
	"ConfigMap shop/cfg",
	"ConfigMap shop/cfg2",
	"Secret shop/creds",
	"Service shop/shop",
	"Deployment.apps shop/shop",
	"Ingress.networking.k8s.io shop/shop",
	"Widget.example.com shop/w1",
	"Service.serving.knative.dev shop/fn",
	"Widget.example.com shop/w2",
	"ValidatingWebhookConfiguration.admissionregistration.k8s.io check",
}

func TestSort(t *testing.T) {
	docs, err := Parse([]byte(unordered))
	assert.NilError(t, err)
	Sort(docs)
	assert.DeepEqual(t, keys(docs), applyOrder)
}

func TestSortForDeletion(t *testing.T) {
	docs, err := Parse([]byte(unordered))
	assert.NilError(t, err)
	SortForDeletion(docs)
	want := make([]string, len(applyOrder))
	for i, k := range applyOrder {
		want[len(want)-1-i] = k
	}
	assert.DeepEqual(t, keys(docs), want)

	// Keys from an inventory in apply order come out the same.
	docs, err = Parse([]byte(unordered))
	assert.NilError(t, err)
	Sort(docs)
	ks := make([]Key, 0, len(docs))
	for _, d := range docs {
		ks = append(ks, d.Key())
	}
	SortKeysForDeletion(ks)
	got := make([]string, 0, len(ks))
	for _, k := range ks {
		got = append(got, k.String())
	}
	assert.DeepEqual(t, got, want)
}

func TestOrder(t *testing.T) {
	before := [][2]string{
		{"CustomResourceDefinition/apiextensions.k8s.io", "Namespace/"},
		{"Namespace/", "ClusterRole/rbac.authorization.k8s.io"},
		{"ClusterRole/rbac.authorization.k8s.io", "ClusterRoleBinding/rbac.authorization.k8s.io"},
		{"StorageClass/storage.k8s.io", "PersistentVolumeClaim/"},
		{"IngressClass/networking.k8s.io", "Ingress/networking.k8s.io"},
		{"ResourceQuota/", "Deployment/apps"},
		{"NetworkPolicy/networking.k8s.io", "Pod/"},
		{"Role/rbac.authorization.k8s.io", "RoleBinding/rbac.authorization.k8s.io"},
		{"Secret/", "Deployment/apps"},
		{"Service/", "StatefulSet/apps"},
		{"Deployment/apps", "HorizontalPodAutoscaler/autoscaling"},
		{"CronJob/batch", "VirtualMachine/kubevirt.io"},
		{"VirtualMachine/kubevirt.io", "APIService/apiregistration.k8s.io"},
		{"ValidatingAdmissionPolicy/admissionregistration.k8s.io", "MutatingWebhookConfiguration/admissionregistration.k8s.io"},
	}
	for _, pair := range before {
		ak, ag, _ := strings.Cut(pair[0], "/")
		bk, bg, _ := strings.Cut(pair[1], "/")
		assert.Assert(t, Order(ak, ag) < Order(bk, bg), "%s before %s", pair[0], pair[1])
	}
	assert.Equal(t, Order("Service", "serving.knative.dev"), RankUnknown)
	assert.Equal(t, Order("Deployment", "extensions"), RankUnknown)
	assert.Equal(t, Order("MutatingWebhookConfiguration", "admissionregistration.k8s.io"), Order("ValidatingWebhookConfiguration", "admissionregistration.k8s.io"))
}
