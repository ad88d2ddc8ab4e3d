package infrahubtest

import (
	"sort"
	"time"

	"github.com/vidra-operator/vidra/infrahub"
)

// state is everything the fake knows; guarded by Server.mu.
type state struct {
	users          map[string]string // username -> password
	accounts       map[string]string // username -> account id
	tokens         map[string]string // API token -> account name
	anonymous      bool
	denied         map[string]bool // principal names without read permission ("" = anonymous)
	accessLifetime time.Duration
	refreshTTL     time.Duration
	jwtKey         []byte
	sessions       map[string]bool // live refresh sessions
	issued         []string        // access tokens issued, for ExpireAccessTokens
	expired        map[string]bool // tokens forced expired

	// defaultBranch is the branch reads without a branch go to (Infrahub's
	// INFRAHUB_INITIAL_DEFAULT_BRANCH; "main" unless WithDefaultBranch).
	defaultBranch string
	// enums renders status and content_type as GraphQL enums (READY,
	// APPLICATION_YAML), as experimental_features.graphql_enums does.
	enums bool
	// pagingByName orders listings by name only, ties in no stable order,
	// as Infrahub before 1.0 did and regardless of order: {disable: true}.
	pagingByName bool
	// viewKinds, when set for a principal, are the only kinds it may view.
	viewKinds map[string]map[string]bool
	// priorities counts the X-Priority header of GraphQL requests ("" when
	// absent).
	priorities map[string]int

	branches    map[string]*branch
	definitions map[string]*definition // by name
	targets     map[string]*target     // by kind + "/" + label
	storage     map[string][]byte
	queries     map[string]string // stored query name -> text

	webhooks   []webhookConfig
	deliveries []Delivery

	counts map[string]int
	faults map[string][]*activeFault
}

type branch struct {
	name    string
	id      string
	created time.Time
	origin  string
	// isolated branches see their origin's artifacts as of their creation;
	// the others see the origin's current ones.
	isolated  bool
	artifacts map[string]*artifactRecord
}

type definition struct {
	id, name, artifactName, contentType string
}

type target struct {
	id, label, kind string
	nameAttrID      string
}

// attribute ids of an artifact: stable across versions, distinct from
// the values (storage_id { id } is not the storage id).
type attrIDs struct {
	name, status, contentType, checksum, storageID, parameters string
}

type artifactRecord struct {
	id      string
	attrs   attrIDs
	history []artifactVersion // in time order
}

type artifactVersion struct {
	at          time.Time
	deleted     bool
	name        string
	status      string
	contentType string
	checksum    string
	storageID   string
	parameters  map[string]any
	def         *definition
	tgt         *target
}

func (st *state) init(now time.Time, defaultBranch string) {
	st.users = map[string]string{}
	st.accounts = map[string]string{}
	st.tokens = map[string]string{}
	st.anonymous = true
	st.denied = map[string]bool{}
	st.accessLifetime = time.Hour
	st.refreshTTL = 30 * 24 * time.Hour
	st.jwtKey = []byte(newUUID())
	st.sessions = map[string]bool{}
	st.expired = map[string]bool{}
	st.branches = map[string]*branch{}
	st.definitions = map[string]*definition{}
	st.targets = map[string]*target{}
	st.storage = map[string][]byte{}
	st.queries = map[string]string{"ArtifactIDs": ArtifactIDsQuery}
	st.counts = map[string]int{}
	st.faults = map[string][]*activeFault{}
	st.viewKinds = map[string]map[string]bool{}
	st.priorities = map[string]int{}
	if defaultBranch == "" {
		defaultBranch = "main"
	}
	st.defaultBranch = defaultBranch
	st.branches[defaultBranch] = &branch{name: defaultBranch, id: newUUID(), created: now, origin: defaultBranch, artifacts: map[string]*artifactRecord{}}
}

// current returns the latest version, nil when the artifact is deleted.
func (a *artifactRecord) current() *artifactVersion {
	v := &a.history[len(a.history)-1]
	if v.deleted {
		return nil
	}
	return v
}

// asOf returns the version valid at t, nil when absent then.
func (a *artifactRecord) asOf(t time.Time) *artifactVersion {
	i := sort.Search(len(a.history), func(i int) bool { return a.history[i].at.After(t) })
	if i == 0 {
		return nil
	}
	v := &a.history[i-1]
	if v.deleted {
		return nil
	}
	return v
}

// view is one artifact as seen at some time.
type view struct {
	rec *artifactRecord
	v   *artifactVersion
}

// versionAt returns the version of rec at t (zero t = now).
func (a *artifactRecord) versionAt(t time.Time) *artifactVersion {
	if t.IsZero() {
		return a.current()
	}
	return a.asOf(t)
}

// originView returns the time at which b reads its origin's data for a
// read of b at t: the branch point for isolated branches.
func (b *branch) originView(t time.Time) time.Time {
	if !b.isolated {
		return t
	}
	if t.IsZero() || t.After(b.created) {
		return b.created
	}
	return t
}

// artifactsAt lists the artifacts a read of b at t (zero t = now) sees,
// sorted by name then id: b's own, and those of the branches it came from
// that b has no record of.
func (st *state) artifactsAt(b *branch, t time.Time) []view {
	var out []view
	seen := map[string]bool{}
	for depth := 0; b != nil && depth < 16; depth++ {
		for id, rec := range b.artifacts {
			if seen[id] {
				continue
			}
			seen[id] = true
			if v := rec.versionAt(t); v != nil {
				out = append(out, view{rec, v})
			}
		}
		if b.origin == b.name {
			break
		}
		t = b.originView(t)
		b = st.branches[b.origin]
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].v.name != out[j].v.name {
			return out[i].v.name < out[j].v.name
		}
		return out[i].rec.id < out[j].rec.id
	})
	return out
}

// artifactAt finds one artifact as a read of b at t sees it.
func (st *state) artifactAt(b *branch, id string, t time.Time) *artifactVersion {
	for depth := 0; b != nil && depth < 16; depth++ {
		if rec := b.artifacts[id]; rec != nil {
			return rec.versionAt(t)
		}
		if b.origin == b.name {
			return nil
		}
		t = b.originView(t)
		b = st.branches[b.origin]
	}
	return nil
}

// ---- public seeding API ----

// AddUser adds (or changes the password of) a login account.
func (s *Server) AddUser(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.users[user] = password
	if _, ok := s.st.accounts[user]; !ok {
		s.st.accounts[user] = newUUID()
	}
}

// AddAPIToken accepts token in X-INFRAHUB-KEY.
func (s *Server) AddAPIToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.tokens[token] = "token:" + token
}

// RemoveAPIToken stops accepting token.
func (s *Server) RemoveAPIToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.st.tokens, token)
}

// SetAnonymousAccess switches main.allow_anonymous_access (default true).
func (s *Server) SetAnonymousAccess(allow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.anonymous = allow
}

// DenyRead makes every read by principal fail with 403: a username, an API
// token, or "" for anonymous users.
func (s *Server) DenyRead(principal string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.denied[principalKey(principal, s.st.tokens)] = true
}

func principalKey(p string, tokens map[string]string) string {
	if name, ok := tokens[p]; ok {
		return name
	}
	if p == "" {
		return ""
	}
	return "user:" + p
}

// SetAccessTokenLifetime sets the lifetime of access tokens issued from now
// on (default 1h).
func (s *Server) SetAccessTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.accessLifetime = d
}

// SetRefreshTokenLifetime sets the lifetime of refresh tokens issued from
// now on (default 30 days).
func (s *Server) SetRefreshTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.refreshTTL = d
}

// ExpireAccessTokens makes every access token issued so far answer
// "Expired Signature", as if its lifetime had passed.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.st.issued {
		s.st.expired[t] = true
	}
}

// RevokeSessions invalidates every refresh token (as a logout would), so
// the next refresh fails and clients must log in again.
func (s *Server) RevokeSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.st.sessions)
}

// AddStoredQuery registers a stored GraphQL query (CoreGraphQLQuery).
// "ArtifactIDs" exists from the start.
func (s *Server) AddStoredQuery(name, query string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.queries[name] = query
}

// AddBranch creates an isolated branch off the default branch, created
// now (Infrahub's default): it sees the default branch's artifacts as of
// now, and its own. The default branch always exists.
func (s *Server) AddBranch(name string) {
	s.AddBranchFrom(name, "", true)
}

// AddBranchFrom creates a branch off origin ("" = the default branch). A
// branch that is not isolated sees its origin's current artifacts.
func (s *Server) AddBranchFrom(name, origin string, isolated bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.addBranchLocked(name)
	if origin != "" && s.st.branches[origin] != nil && origin != name {
		b.origin = origin
	}
	b.isolated = isolated
}

func (s *Server) addBranchLocked(name string) *branch {
	if b, ok := s.st.branches[name]; ok {
		return b
	}
	b := &branch{name: name, id: newUUID(), created: s.now(), origin: s.st.defaultBranch, isolated: true, artifacts: map[string]*artifactRecord{}}
	s.st.branches[name] = b
	s.logf("branch created", "branch", name)
	return b
}

// DefaultBranch returns the name of the default branch.
func (s *Server) DefaultBranch() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.defaultBranch
}

// SetGraphQLEnums switches experimental_features.graphql_enums: artifact
// status and content_type values are then GraphQL enum names (READY,
// APPLICATION_YAML) in GraphQL answers.
func (s *Server) SetGraphQLEnums(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.enums = on
}

// SetPagingByName makes CoreArtifact listings order by name only, with
// artifacts of the same name in a different order on every request, as
// Infrahub before 1.0 did; order: {disable: true} is ignored. Pages of a
// listing then overlap and skip artifacts.
func (s *Server) SetPagingByName(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.pagingByName = on
}

// RestrictView limits what principal (as for DenyRead) may view to kinds,
// e.g. only "CoreArtifact": a GraphQL query selecting a relationship to
// another kind's attributes (the definition's) then fails with 403
// PERMISSION_DENIED, as Infrahub's object permission checker does.
func (s *Server) RestrictView(principal string, kinds ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[string]bool{}
	for _, k := range kinds {
		set[k] = true
	}
	s.st.viewKinds[principalKey(principal, s.st.tokens)] = set
}

// Priorities returns how many GraphQL requests carried each X-Priority
// value ("" for none).
func (s *Server) Priorities() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.st.priorities))
	for k, v := range s.st.priorities {
		out[k] = v
	}
	return out
}

// ArtifactSpec describes an artifact to create or regenerate.
type ArtifactSpec struct {
	// ID selects the artifact to regenerate. Empty: the artifact with the
	// same Name, DefinitionName and (non-empty) TargetLabel on the branch,
	// else a new one.
	ID string
	// Name is the artifact name (default "Webserver_Manifest").
	Name string
	// DefinitionName names the CoreArtifactDefinition (default
	// "Webserver_Artifact_Definition").
	DefinitionName string
	// TargetLabel is the display label of the target node (default: the
	// artifact id); TargetKind its kind (default "KubernetesWebserver").
	TargetLabel string
	TargetKind  string
	// ContentType defaults to application/yaml.
	ContentType string
	// Content is the rendered content (Status "" or Ready).
	Content []byte
	// Status: "" or Ready renders Content (a no-op when its MD5 is
	// unchanged, exactly like Infrahub, even for an artifact in Error);
	// Pending or Processing only set the status (a new artifact has no
	// content); Error keeps the old content and checksum.
	Status string
	// Parameters is the artifact's parameters attribute.
	Parameters map[string]any
}

// ArtifactInfo describes an artifact after a change.
type ArtifactInfo struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Branch         string `json:"branch"`
	Status         string `json:"status"`
	ContentType    string `json:"content_type"`
	Checksum       string `json:"checksum"`
	StorageID      string `json:"storage_id"`
	DefinitionID   string `json:"definition_id"`
	DefinitionName string `json:"definition_name"`
	TargetID       string `json:"target_id"`
	TargetLabel    string `json:"target_label"`
	TargetKind     string `json:"target_kind"`
	// Changed is false when nothing changed (same content re-rendered).
	Changed bool `json:"changed"`
	// Event is the webhook event emitted, if any.
	Event string `json:"event,omitempty"`
}

func infoOf(branchName string, rec *artifactRecord, v *artifactVersion) ArtifactInfo {
	return ArtifactInfo{
		ID: rec.id, Name: v.name, Branch: branchName, Status: v.status, ContentType: v.contentType,
		Checksum: v.checksum, StorageID: v.storageID,
		DefinitionID: v.def.id, DefinitionName: v.def.name,
		TargetID: v.tgt.id, TargetLabel: v.tgt.label, TargetKind: v.tgt.kind,
	}
}

// SetArtifact creates or regenerates an artifact on a branch (created if
// missing), recording the change in the history used by `at`. Content is
// stored under a new storage id only when its MD5 changed; then an
// infrahub.artifact.created (first content) or .updated event is sent to the
// matching webhooks.
func (s *Server) SetArtifact(branchName string, spec ArtifactSpec) ArtifactInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.addBranchLocked(s.st.branchOr(branchName))
	if spec.Name == "" {
		spec.Name = s.defaults.Name
	}
	if spec.DefinitionName == "" {
		spec.DefinitionName = s.defaults.DefinitionName
	}
	if spec.TargetKind == "" {
		spec.TargetKind = s.defaults.TargetKind
	}
	if spec.ContentType == "" {
		spec.ContentType = s.defaults.ContentType
	}
	now := s.now()

	rec := b.artifacts[spec.ID]
	if spec.ID == "" && spec.TargetLabel != "" {
		for _, r := range b.artifacts {
			v := r.current()
			if v != nil && v.name == spec.Name && v.def.name == spec.DefinitionName && v.tgt.label == spec.TargetLabel {
				rec = r
				break
			}
		}
	}
	var prev *artifactVersion
	if rec != nil {
		prev = rec.current()
	} else if inherited := s.inheritedLocked(b, spec); inherited.rec != nil {
		// A branch changes an artifact it sees from its origin: the same
		// node, changed on this branch only.
		local := &artifactRecord{id: inherited.rec.id, attrs: inherited.rec.attrs}
		b.artifacts[local.id] = local
		defer func() {
			if len(local.history) == 0 { // nothing changed after all
				delete(b.artifacts, local.id)
			}
		}()
		rec, prev = local, inherited.v
	}
	isNew := prev == nil
	if isNew {
		if rec == nil {
			id := spec.ID
			if id == "" {
				id = newUUID()
			}
			rec = &artifactRecord{id: id, attrs: attrIDs{
				name: newUUID(), status: newUUID(), contentType: newUUID(),
				checksum: newUUID(), storageID: newUUID(), parameters: newUUID(),
			}}
			b.artifacts[id] = rec
		}
		label := spec.TargetLabel
		if label == "" {
			label = rec.id
		}
		prev = &artifactVersion{
			name: spec.Name, status: "Pending", contentType: spec.ContentType,
			def: s.definitionLocked(spec.DefinitionName, spec.Name, spec.ContentType),
			tgt: s.targetLocked(spec.TargetKind, label),
		}
		// The definition creates the artifact Pending, without content.
	}
	next := *prev
	next.at = now
	next.deleted = false
	if spec.Parameters != nil {
		next.parameters = spec.Parameters
	}
	info := ArtifactInfo{}
	switch spec.Status {
	case "", "Ready":
		sum := infrahub.Checksum(spec.Content)
		if sum == prev.checksum {
			return infoOf(b.name, rec, prev)
		}
		sid := newUUID()
		s.st.storage[sid] = append([]byte(nil), spec.Content...)
		next.checksum, next.storageID = sum, sid
		next.status, next.contentType, next.name = "Ready", spec.ContentType, spec.Name
		info.Event = "infrahub.artifact.updated"
		if prev.checksum == "" {
			info.Event = "infrahub.artifact.created"
		}
		s.emitArtifactEventLocked(b.name, rec, prev, &next, info.Event)
	case "Pending", "Processing", "Error":
		if next.status == spec.Status && !isNew {
			return infoOf(b.name, rec, prev)
		}
		next.status = spec.Status
	default:
		next.status = spec.Status
	}
	rec.history = append(rec.history, next)
	out := infoOf(b.name, rec, &rec.history[len(rec.history)-1])
	out.Changed, out.Event = true, info.Event
	s.logf("artifact set", "branch", b.name, "id", rec.id, "name", next.name, "status", next.status,
		"checksum", next.checksum, "storage_id", next.storageID, "event", info.Event)
	return out
}

// inheritedLocked finds the artifact spec designates among those b sees
// from the branches it came from.
func (s *Server) inheritedLocked(b *branch, spec ArtifactSpec) view {
	if b.origin == b.name || (spec.ID == "" && spec.TargetLabel == "") {
		return view{}
	}
	for _, v := range s.st.artifactsAt(b, time.Time{}) {
		if b.artifacts[v.rec.id] != nil {
			continue
		}
		if spec.ID != "" && v.rec.id == spec.ID ||
			spec.ID == "" && v.v.name == spec.Name && v.v.def.name == spec.DefinitionName && v.v.tgt.label == spec.TargetLabel {
			return v
		}
	}
	return view{}
}

func (s *Server) definitionLocked(name, artifactName, contentType string) *definition {
	if d, ok := s.st.definitions[name]; ok {
		return d
	}
	d := &definition{id: newUUID(), name: name, artifactName: artifactName, contentType: contentType}
	s.st.definitions[name] = d
	return d
}

func (s *Server) targetLocked(kind, label string) *target {
	key := kind + "/" + label
	if t, ok := s.st.targets[key]; ok {
		return t
	}
	t := &target{id: newUUID(), label: label, kind: kind, nameAttrID: newUUID()}
	s.st.targets[key] = t
	return t
}

// liveArtifactLocked finds an artifact that exists now; rec is nil if not.
func (s *Server) liveArtifactLocked(branchName, id string) (*branch, *artifactRecord) {
	b := s.st.branches[s.st.branchOr(branchName)]
	if b == nil || b.artifacts[id] == nil || b.artifacts[id].current() == nil {
		return b, nil
	}
	return b, b.artifacts[id]
}

// SetArtifactStatus changes only the status (Pending, Processing, Error,
// Ready) of an existing artifact. It reports false when there is none.
func (s *Server) SetArtifactStatus(branchName, id, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, rec := s.liveArtifactLocked(branchName, id)
	if rec == nil {
		return false
	}
	next := *rec.current()
	next.at, next.status = s.now(), status
	rec.history = append(rec.history, next)
	s.logf("artifact status", "branch", b.name, "id", id, "status", status)
	return true
}

// DeleteArtifact deletes an artifact (its stored objects stay readable);
// on a branch, also one it sees from its origin (there only).
// It reports false when there was none. Matching webhooks receive an
// infrahub.node.deleted event of kind CoreArtifact.
func (s *Server) DeleteArtifact(branchName, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, rec := s.liveArtifactLocked(branchName, id)
	var prev *artifactVersion
	if rec != nil {
		prev = rec.current()
	} else if b != nil {
		// An artifact the branch sees from its origin: deleted on this
		// branch only.
		if prev = s.st.artifactAt(b, id, time.Time{}); prev == nil || b.artifacts[id] != nil {
			return false
		}
		var attrs attrIDs
		for _, v := range s.st.artifactsAt(b, time.Time{}) {
			if v.rec.id == id {
				attrs = v.rec.attrs
			}
		}
		rec = &artifactRecord{id: id, attrs: attrs}
		b.artifacts[id] = rec
	} else {
		return false
	}
	next := *prev
	next.at, next.deleted = s.now(), true
	rec.history = append(rec.history, next)
	s.emitNodeDeletedLocked(b.name, rec, prev)
	s.logf("artifact deleted", "branch", b.name, "id", id)
	return true
}

// Artifacts returns the current artifacts of a branch, sorted by name, id.
func (s *Server) Artifacts(branchName string) []ArtifactInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.st.branches[s.st.branchOr(branchName)]
	if b == nil {
		return nil
	}
	var out []ArtifactInfo
	for _, v := range s.st.artifactsAt(b, time.Time{}) {
		out = append(out, infoOf(b.name, v.rec, v.v))
	}
	return out
}

// Content returns the stored object of a storage id.
func (s *Server) Content(storageID string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.st.storage[storageID]
	return append([]byte(nil), b...), ok
}

// branchOr returns b, or the default branch for "".
func (st *state) branchOr(b string) string {
	if b == "" {
		return st.defaultBranch
	}
	return b
}
