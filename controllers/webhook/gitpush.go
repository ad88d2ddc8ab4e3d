package webhook

// GitPush is a verified push event of a Git hosting service.
type GitPush struct {
	// RepoURLs are the URLs the event gives for the pushed repository
	// (clone, SSH, web): compare them with gitrepo.SameRepository.
	RepoURLs []string
	// Ref is the full ref pushed, e.g. "refs/heads/main" or "refs/tags/v1.2.0".
	Ref string
	// Commit is the ref's new commit; all zeros when the ref was deleted.
	Commit string
}

// GitPushTrigger asks for an immediate pass of the GitSyncs a push
// concerns; the GitSync controller implements it. It returns how many
// syncs it triggered.
type GitPushTrigger interface {
	TriggerGitPush(push GitPush) int
}
