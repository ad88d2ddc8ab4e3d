package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

const fieldManager = "vidra-controlplane"

// InstallCRDs applies the CustomResourceDefinitions found in paths (YAML or
// JSON files, possibly multi-document, or directories searched recursively for
// *.yaml, *.yml and *.json) and waits until each is Established and served by
// discovery.
//
// kube-controller-manager's garbage collector only learns about resources
// present when it starts and re-reads discovery every 30 s after that, so
// objects owned by custom resources of CRDs installed here (rather than in
// Config.CRDPaths) may take up to ~40 s to be collected.
func (cp *ControlPlane) InstallCRDs(ctx context.Context, paths ...string) error {
	crds, err := readCRDs(paths)
	if err != nil {
		return err
	}
	if len(crds) == 0 {
		return nil
	}
	ctx, cancel := withDefaultTimeout(ctx, 2*time.Minute)
	defer cancel()
	cfg := cp.RESTConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating discovery client: %w", err)
	}
	for _, crd := range crds {
		// Server-side apply makes a repeated install (or a changed CRD) work.
		if _, err := dyn.Resource(crdGVR).Apply(ctx, crd.obj.GetName(), crd.obj,
			metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("applying CRD %s from %s: %w", crd.obj.GetName(), crd.source, err)
		}
	}
	for _, crd := range crds {
		if err := waitCRDReady(ctx, dyn, disc, crd.obj); err != nil {
			return fmt.Errorf("CRD %s from %s: %w", crd.obj.GetName(), crd.source, err)
		}
	}
	return nil
}

type crdDoc struct {
	source string
	obj    *unstructured.Unstructured
}

func readCRDs(paths []string) ([]crdDoc, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reading CRDs: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					found = append(found, path)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading CRDs from %s: %w", p, err)
		}
		slices.Sort(found)
		files = append(files, found...)
	}

	var crds []crdDoc
	for _, file := range files {
		docs, err := decodeDocuments(file)
		if err != nil {
			return nil, err
		}
		for i, doc := range docs {
			obj := &unstructured.Unstructured{Object: doc}
			gvk := obj.GroupVersionKind()
			if gvk.Group != crdGVR.Group || gvk.Kind != "CustomResourceDefinition" {
				return nil, fmt.Errorf("%s: document %d is %s, not a CustomResourceDefinition", file, i+1, gvk)
			}
			if gvk.Version != crdGVR.Version {
				return nil, fmt.Errorf("%s: document %d: only %s/%s CRDs are supported, got %s", file, i+1, crdGVR.Group, crdGVR.Version, gvk.Version)
			}
			if obj.GetName() == "" {
				return nil, fmt.Errorf("%s: document %d: CRD without metadata.name", file, i+1)
			}
			// Generated files carry an empty status, which apply would reject
			// as a field the main resource does not own.
			delete(obj.Object, "status")
			crds = append(crds, crdDoc{source: file, obj: obj})
		}
	}
	return crds, nil
}

func decodeDocuments(file string) ([]map[string]any, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading CRDs: %w", err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", file, err)
		}
		if len(doc) > 0 { // empty documents between "---" separators
			docs = append(docs, doc)
		}
	}
}

// waitCRDReady waits for the Established condition, then until discovery
// lists the resource for every served version: clients (and the controller
// manager started after Config.CRDPaths) rely on discovery, which lags the
// condition slightly.
func waitCRDReady(ctx context.Context, dyn dynamic.Interface, disc discovery.DiscoveryInterface, crd *unstructured.Unstructured) error {
	name := crd.GetName()
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	var served []string
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		vm, _ := v.(map[string]any)
		if s, _ := vm["served"].(bool); s {
			if n, _ := vm["name"].(string); n != "" {
				served = append(served, n)
			}
		}
	}

	lastState := "not yet observed"
	err := poll(ctx, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		got, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			lastState = err.Error()
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		established := false
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			t, _ := cm["type"].(string)
			s, _ := cm["status"].(string)
			msg, _ := cm["message"].(string)
			switch {
			case t == "Established" && s == "True":
				established = true
			case t == "NamesAccepted" && s == "False":
				return false, fmt.Errorf("names not accepted: %s", msg)
			}
			if t == "Established" {
				lastState = fmt.Sprintf("Established=%s %s", s, msg)
			}
		}
		if !established {
			return false, nil
		}
		for _, v := range served {
			list, err := disc.ServerResourcesForGroupVersion(group + "/" + v)
			if err != nil {
				lastState = fmt.Sprintf("Established, discovery of %s/%s: %v", group, v, err)
				return false, nil
			}
			if !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == plural }) {
				lastState = fmt.Sprintf("Established, %s not yet in discovery of %s/%s", plural, group, v)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting until established (last state: %s): %w", lastState, err)
	}
	return nil
}

// poll calls check every interval until it reports done, returns an error, or
// ctx ends.
func poll(ctx context.Context, interval time.Duration, check func(context.Context) (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := check(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
