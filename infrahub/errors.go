package infrahub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind classifies an error so that callers can decide what to do with it
// without parsing messages.
type Kind int

const (
	// KindUnknown is the zero Kind; no error returned by this package has it.
	KindUnknown Kind = iota
	// KindAuth: the credentials are missing, wrong or expired and could not
	// be renewed (HTTP 401, or a failed login).
	KindAuth
	// KindPermission: the account may not read what was asked (HTTP 403).
	KindPermission
	// KindNotFound: the artifact or stored object does not exist (HTTP 404),
	// or the artifact has no content yet.
	KindNotFound
	// KindBadRequest: Infrahub refused the request itself: unknown branch, a
	// bad or too early `at`, an unknown stored query parameter (HTTP 400/422),
	// or the client refused it before sending (empty artifact name, bad `at`).
	KindBadRequest
	// KindTransient: worth retrying later: HTTP 5xx, 429, 408, network errors,
	// timeouts and truncated bodies. RetryAfter is set when Infrahub said how
	// long to wait.
	KindTransient
	// KindGraphQL: the GraphQL query failed inside Infrahub (errors in an
	// HTTP 200 response, or the 502 of a failing stored query). Never an
	// empty list.
	KindGraphQL
	// KindTooLarge: a response, an artifact or the number of pages exceeded
	// the configured limits.
	KindTooLarge
	// KindInvalidResponse: Infrahub answered something this client cannot
	// read (not JSON, missing fields, unexpected status).
	KindInvalidResponse
	// KindChecksumMismatch: downloaded content does not have the MD5 the
	// artifact announced.
	KindChecksumMismatch
)

var kindNames = [...]string{
	KindUnknown:          "unknown error",
	KindAuth:             "authentication failed",
	KindPermission:       "permission denied",
	KindNotFound:         "not found",
	KindBadRequest:       "bad request",
	KindTransient:        "transient error",
	KindGraphQL:          "GraphQL error",
	KindTooLarge:         "too large",
	KindInvalidResponse:  "invalid response",
	KindChecksumMismatch: "checksum mismatch",
}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Infrahub error codes this package recognises and reports in Error.Code.
const (
	CodeBranchNotFound = "BRANCH_NOT_FOUND"
	CodeTokenExpired   = "TOKEN_EXPIRED"
)

// Error is the error type of every failed call. Use errors.As to get it, or
// the Is* predicates.
type Error struct {
	Kind Kind
	// Endpoint is the low-cardinality name of the endpoint that failed:
	// login, refresh, graphql, query, artifact, storage; empty for failures
	// detected before sending anything.
	Endpoint string
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Code is Infrahub's error code when it sent or implied one, such as
	// BRANCH_NOT_FOUND or TOKEN_EXPIRED.
	Code string
	// Message is Infrahub's message, or this client's description.
	Message string
	// RetryAfter is how long Infrahub asked to wait (429/503 Retry-After).
	RetryAfter time.Duration
	// Err is the underlying error, if any (network errors, context errors).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("infrahub")
	if e.Endpoint != "" {
		b.WriteString(" ")
		b.WriteString(e.Endpoint)
	}
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err, or KindUnknown when err is not (and does
// not wrap) an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// RetryAfter returns the wait Infrahub asked for, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// IsAuth reports whether err is an authentication failure.
func IsAuth(err error) bool { return KindOf(err) == KindAuth }

// IsPermission reports whether err is a permission failure.
func IsPermission(err error) bool { return KindOf(err) == KindPermission }

// IsNotFound reports whether err means the object does not exist (yet).
func IsNotFound(err error) bool { return KindOf(err) == KindNotFound }

// IsBadRequest reports whether Infrahub (or the client) refused the request.
func IsBadRequest(err error) bool { return KindOf(err) == KindBadRequest }

// IsBranchNotFound reports whether err says the branch does not exist.
func IsBranchNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeBranchNotFound
}

// IsTransient reports whether retrying later may succeed.
func IsTransient(err error) bool { return KindOf(err) == KindTransient }

// IsGraphQL reports whether err is a GraphQL execution error.
func IsGraphQL(err error) bool { return KindOf(err) == KindGraphQL }

// IsTooLarge reports whether a size or page limit was exceeded.
func IsTooLarge(err error) bool { return KindOf(err) == KindTooLarge }

// IsInvalidResponse reports whether Infrahub's answer could not be read.
func IsInvalidResponse(err error) bool { return KindOf(err) == KindInvalidResponse }

// IsChecksumMismatch reports whether downloaded content failed verification.
func IsChecksumMismatch(err error) bool { return KindOf(err) == KindChecksumMismatch }

const maxMessageLen = 512

// errorInfo is what can be read out of an Infrahub error body.
type errorInfo struct {
	messages []string
	code     string // catalogue code (string) when present
	// nested is true when a message was itself an object: the stored query
	// 502 quirk, meaning a GraphQL execution error.
	nested bool
	// plain is true when the errors were a list of plain strings (the
	// GraphQL transport errors, e.g. the unknown branch 404).
	plain bool
}

func (i errorInfo) message() string {
	return clip(strings.Join(i.messages, "; "))
}

// parseErrorBody reads the error envelopes Infrahub uses: the REST envelope
// {"data":null,"errors":[{"message":...,"extensions":{"code":401}}]}, the
// GraphQL envelope with string codes, plain string lists, and FastAPI's
// {"detail": ...}. It never fails; unreadable bodies give a short text.
func parseErrorBody(body []byte) errorInfo {
	var info errorInfo
	var env struct {
		Errors []json.RawMessage `json:"errors"`
		Detail json.RawMessage   `json:"detail"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return info
	}
	if trimmed[0] != '{' || json.Unmarshal(trimmed, &env) != nil {
		if utf8.Valid(trimmed) {
			info.messages = []string{clip(string(trimmed))}
		}
		return info
	}
	for _, raw := range env.Errors {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			info.plain = true
			info.messages = append(info.messages, s)
			continue
		}
		var item struct {
			Message    json.RawMessage `json:"message"`
			Extensions struct {
				Code json.RawMessage `json:"code"`
			} `json:"extensions"`
		}
		if json.Unmarshal(raw, &item) != nil {
			continue
		}
		var msg string
		if json.Unmarshal(item.Message, &msg) != nil {
			var nested struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(item.Message, &nested) == nil && nested.Message != "" {
				msg = nested.Message
				info.nested = true
			}
		}
		if msg != "" {
			info.messages = append(info.messages, msg)
		}
		var code string
		if info.code == "" && json.Unmarshal(item.Extensions.Code, &code) == nil {
			info.code = code
		}
	}
	if len(env.Detail) > 0 {
		var s string
		if json.Unmarshal(env.Detail, &s) == nil {
			info.messages = append(info.messages, s)
		} else {
			var items []struct {
				Msg string `json:"msg"`
				Loc []any  `json:"loc"`
			}
			if json.Unmarshal(env.Detail, &items) == nil {
				for _, it := range items {
					info.messages = append(info.messages, strings.TrimSpace(fmt.Sprint(it.Loc)+" "+it.Msg))
				}
			}
		}
	}
	return info
}

func clip(s string) string {
	if len(s) <= maxMessageLen {
		return s
	}
	cut := maxMessageLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isBranchNotFound(msgs []string) bool {
	for _, m := range msgs {
		if strings.HasPrefix(m, "Branch: ") && strings.HasSuffix(m, " not found.") {
			return true
		}
	}
	return false
}

const msgExpiredSignature = "Expired Signature"

// classify turns a non-2xx response into an *Error.
func classify(endpoint string, status int, header http.Header, body []byte, now time.Time) *Error {
	info := parseErrorBody(body)
	e := &Error{Endpoint: endpoint, StatusCode: status, Message: info.message(), Code: info.code}
	if isBranchNotFound(info.messages) {
		e.Code = CodeBranchNotFound
	}
	switch {
	case status == http.StatusBadRequest:
		e.Kind = KindBadRequest
	case status == http.StatusUnauthorized:
		e.Kind = KindAuth
		for _, m := range info.messages {
			if m == msgExpiredSignature {
				e.Code = CodeTokenExpired
			}
		}
	case status == http.StatusForbidden:
		e.Kind = KindPermission
	case status == http.StatusNotFound:
		switch {
		case e.Code == CodeBranchNotFound:
			// POST /graphql/{unknown branch} answers 404.
			e.Kind = KindBadRequest
		case endpoint == endpointLogin:
			// Unknown user: Infrahub answers 404 on login.
			e.Kind = KindAuth
		default:
			e.Kind = KindNotFound
		}
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		e.Kind = KindTransient
	case status == http.StatusBadGateway && info.nested:
		// A stored query whose GraphQL execution failed.
		e.Kind = KindGraphQL
	case status >= 500:
		e.Kind = KindTransient
	case status >= 400:
		e.Kind = KindBadRequest
	default:
		e.Kind = KindInvalidResponse
		if e.Message == "" {
			e.Message = "unexpected HTTP status"
		}
	}
	if e.Kind == KindTransient {
		e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), now)
	}
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	const maxWait = 24 * time.Hour
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(min(n, int64(maxWait/time.Second)))*time.Second, maxWait)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxWait)
		}
	}
	return 0
}
