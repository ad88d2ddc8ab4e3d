// Package manifest turns the manifests Infrahub renders into Kubernetes
// objects and answers the questions the controllers ask about them: which
// object is this (Key), in which order to apply or delete (Sort), did the
// declared content change (ContentHash) and would an apply change anything
// (Equivalent, Diff).
//
// Everything here is a pure function: no API calls, no clocks, no globals.
//
// Secret safety: nothing in this package puts the value of a field into an
// error or a description. Errors name documents, lines and field names; the
// YAML and JSON libraries' own messages are scrubbed of quoted content
// before they are passed on, because some of them quote the offending text.
package manifest
