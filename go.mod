module github.com/vidra-operator/vidra

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0 // indirect
	gotest.tools/v3 v3.5.2 // indirect
	k8s.io/api v0.37.2 // indirect
	k8s.io/apimachinery v0.37.2 // indirect
	k8s.io/client-go v0.37.2 // indirect
)
