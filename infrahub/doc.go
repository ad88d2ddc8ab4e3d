// Package infrahub is Vidra's only door to Infrahub (opsmill), spoken over
// the standard library's net/http: logins and API tokens, artifact listings
// through GraphQL or a stored query, content downloads verified against
// their MD5 checksum, a byte-bounded content cache shared by all syncs,
// typed errors, the `at` (targetDate) rules, and webhook verification.
//
// Nothing here knows about Kubernetes. The fake Infrahub used to test it
// lives in the infrahubtest subpackage.
package infrahub
