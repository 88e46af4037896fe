package agent

import (
	"context"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap"

	"github.com/sluice-dev/sluice/gitsource"
)

// specNotice is what a pass says about the spec branch in every release's
// status (and an Event): a rewrite, or a head --verify-commits refused.
type specNotice struct {
	message, subject, reason string
}

// verification decides which spec commit may be applied under
// --verify-commits (pass goroutine only).
type verification struct {
	mode string
	keys *gitsource.TrustedKeys
	// since (all mode) is the commit the checks start after: it and its
	// ancestors are taken as they are.
	since plumbing.Hash
	// verified holds, in all mode, every commit checked (and since's
	// history), so each pass checks only the new ones.
	verified map[plumbing.Hash]bool
	// good is the last head that verified: what serves while a newer head
	// is refused. refused is the last head refused (reported once).
	good, refused plumbing.Hash
}

func newVerification(opts Options, src *gitsource.Source, log *zap.Logger) (*verification, error) {
	switch opts.VerifyCommits {
	case "", "off":
		if len(opts.TrustedKeysFiles) > 0 {
			return nil, fmt.Errorf("--trusted-keys-file is set but --verify-commits is off: say --verify-commits=head or all")
		}
		return nil, nil
	case gitsource.VerifyHead, gitsource.VerifyAll:
	default:
		return nil, fmt.Errorf("--verify-commits %q: want head, all or off", opts.VerifyCommits)
	}
	keys, err := gitsource.LoadTrustedKeys(opts.TrustedKeysFiles)
	if err != nil {
		return nil, err
	}
	if pub := src.SigningKey(); pub != nil {
		// The agent's own commits on the spec branch (status there, files
		// reverted after an abort) verify with its signing key.
		keys.AddSSH("sluice (--signing-key-file)", pub)
	} else if src.SameBranch() {
		return nil, fmt.Errorf("--verify-commits with the status on the spec branch needs --signing-key-file: the agent's own status commits must verify too")
	} else {
		log.Warn("--verify-commits without --signing-key-file: a commit the agent makes on the spec branch (the files of an aborted release put back) will not verify")
	}
	v := &verification{mode: opts.VerifyCommits, keys: keys, verified: map[plumbing.Hash]bool{}}
	if opts.VerifyCommitsSince != "" {
		if v.mode != gitsource.VerifyAll {
			return nil, fmt.Errorf("--verify-commits-since is for --verify-commits=all")
		}
		if v.since = plumbing.NewHash(opts.VerifyCommitsSince); v.since.IsZero() || v.since.String() != opts.VerifyCommitsSince {
			return nil, fmt.Errorf("--verify-commits-since %q: want a full 40-digit commit id", opts.VerifyCommitsSince)
		}
	}
	return v, nil
}

// verifyHead returns the spec commit this pass applies: head when it
// verifies (in all mode: it and every commit since the last verified
// one), else the last verified head, with a notice for the releases'
// statuses the first time a head is refused. With no verified head to
// fall back on nothing is applied.
func (a *Agent) verifyHead(ctx context.Context, head plumbing.Hash) (plumbing.Hash, error) {
	v := a.verify
	if head == v.good {
		return head, nil
	}
	if head == v.refused {
		return a.serveVerified(head, nil)
	}
	known := func(h plumbing.Hash) bool { return h != head } // head mode: the head alone
	if v.mode == gitsource.VerifyAll {
		if !v.since.IsZero() && !v.verified[v.since] {
			if err := a.src.FetchCommit(ctx, a.opts.Branch, v.since); err != nil {
				return plumbing.ZeroHash, fmt.Errorf("--verify-commits-since: %w", err)
			}
			before, err := a.src.Since(ctx, a.opts.Branch, v.since, func(plumbing.Hash) bool { return false })
			if err != nil {
				return plumbing.ZeroHash, err
			}
			for _, c := range before {
				v.verified[c.Hash] = true
			}
		}
		known = func(h plumbing.Hash) bool { return v.verified[h] }
	}
	commits, err := a.src.Since(ctx, a.opts.Branch, head, known)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if c, err := v.keys.VerifyEach(commits); c != nil {
		return a.serveVerified(head, fmt.Errorf("commit %s (%q by %s) %v", short(c.Hash.String()), firstLine(c.Message), c.Author.Email, err))
	}
	for _, c := range commits {
		if v.mode == gitsource.VerifyAll {
			v.verified[c.Hash] = true
		}
	}
	if !v.refused.IsZero() {
		a.log.Info("spec head verified again", zap.Stringer("head", head))
	}
	v.good, v.refused = head, plumbing.ZeroHash
	a.metrics.verified.Set(1)
	return head, nil
}

// serveVerified reports head refused (why is nil when already reported)
// and returns the last verified head to apply instead.
func (a *Agent) serveVerified(head plumbing.Hash, why error) (plumbing.Hash, error) {
	v := a.verify
	a.metrics.verified.Set(0)
	if why == nil { // reported when first refused
		if v.good.IsZero() {
			return plumbing.ZeroHash, fmt.Errorf("spec head %s is not verified and no verified commit is known: nothing is applied", short(head.String()))
		}
		return v.good, nil
	}
	v.refused = head
	a.metrics.unverified.Inc()
	msg := fmt.Sprintf("spec head %s not applied (--verify-commits=%s): %v", short(head.String()), v.mode, why)
	if v.good.IsZero() {
		a.log.Error(msg + "; no verified commit is known: nothing is applied")
		return plumbing.ZeroHash, fmt.Errorf("%s; no verified commit is known: nothing is applied", msg)
	}
	msg += fmt.Sprintf("; %s, the last verified commit, keeps serving", short(v.good.String()))
	a.log.Error(msg)
	a.notice = specNotice{message: msg, subject: "spec head not verified", reason: "SluiceUnverifiedCommit"}
	a.mu.Lock() // every release says it in this pass
	clear(a.files)
	clear(a.seen)
	a.mu.Unlock()
	return v.good, nil
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
