package gitsource

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"
)

// Verification modes of the spec branch (--verify-commits).
const (
	// VerifyHead: the head commit must be signed by a trusted key.
	VerifyHead = "head"
	// VerifyAll: every commit since the last verified one must be, so an
	// unsigned commit cannot hide under a signed merge.
	VerifyAll = "all"
)

// ErrUnsigned is a commit with no signature at all.
var ErrUnsigned = errors.New("not signed")

// TrustedKeys are the keys whose signatures make a commit verified:
// OpenPGP public keys and SSH keys listed as Git's allowed signers
// (gpg.ssh.allowedSignersFile).
type TrustedKeys struct {
	pgp openpgp.EntityList
	ssh []allowedSigner
	now func() time.Time
}

// allowedSigner is one line of an allowed_signers file (ssh-keygen(1),
// ALLOWED SIGNERS).
type allowedSigner struct {
	principals  string
	key         ssh.PublicKey
	fingerprint string
	namespaces  []string // empty: every namespace
	validAfter  time.Time
	validBefore time.Time
	where       string // file:line
}

// LoadTrustedKeys reads each file as an OpenPGP public keyring (armored
// or binary) or, failing that, an allowed_signers file.
func LoadTrustedKeys(files []string) (*TrustedKeys, error) {
	k := &TrustedKeys{now: time.Now}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--trusted-keys-file: %w", err)
		}
		if err := k.add(f, data); err != nil {
			return nil, err
		}
	}
	if len(k.pgp) == 0 && len(k.ssh) == 0 {
		return nil, errors.New("--verify-commits needs at least one key in the --trusted-keys-file files")
	}
	return k, nil
}

func (k *TrustedKeys) add(file string, data []byte) error {
	trimmed := bytes.TrimSpace(data)
	const begin = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
	if bytes.HasPrefix(trimmed, []byte(begin)) {
		// One armored block each (gpg --export of several keys, or files
		// put together with cat).
		for i, block := range strings.Split(string(trimmed), begin)[1:] {
			el, err := openpgp.ReadArmoredKeyRing(strings.NewReader(begin + block))
			if err != nil {
				return fmt.Errorf("%s: OpenPGP public key block %d: %w", file, i+1, err)
			}
			k.pgp = append(k.pgp, el...)
		}
		return nil
	}
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP")) {
		return fmt.Errorf("%s: not a public key block (export it with gpg --armor --export <key id>)", file)
	}
	if len(trimmed) > 0 && trimmed[0]&0x80 != 0 { // a binary OpenPGP packet
		el, err := openpgp.ReadKeyRing(bytes.NewReader(trimmed))
		if err != nil {
			return fmt.Errorf("%s: OpenPGP public keys: %w", file, err)
		}
		k.pgp = append(k.pgp, el...)
		return nil
	}
	signers, err := parseAllowedSigners(file, data)
	if err != nil {
		return err
	}
	k.ssh = append(k.ssh, signers...)
	return nil
}

// AddSSH trusts key for principal: the agent's own signing key, so that
// the commits it makes on the spec branch verify.
func (k *TrustedKeys) AddSSH(principal string, key ssh.PublicKey) {
	k.ssh = append(k.ssh, allowedSigner{principals: principal, key: key, fingerprint: ssh.FingerprintSHA256(key), where: "the agent's --signing-key-file"})
}

// parseAllowedSigners reads "principals [options] keytype base64 [comment]"
// lines; the options namespaces, valid-after and valid-before are honoured,
// cert-authority is refused (certificates are not supported).
func parseAllowedSigners(file string, data []byte) ([]allowedSigner, error) {
	var out []allowedSigner
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", file, n)
		principals, rest, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%s: want \"principals [options] keytype key\" (an allowed_signers line)", where)
		}
		key, _, options, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(rest)))
		if err != nil {
			return nil, fmt.Errorf("%s: not an OpenPGP key or an allowed_signers line: %v", where, err)
		}
		s := allowedSigner{principals: principals, key: key, fingerprint: ssh.FingerprintSHA256(key), where: where}
		for _, o := range options {
			name, value, _ := strings.Cut(o, "=")
			value = strings.Trim(value, `"`)
			switch strings.ToLower(name) {
			case "namespaces":
				s.namespaces = strings.Split(value, ",")
			case "valid-after":
				if s.validAfter, err = parseSSHTime(value); err != nil {
					return nil, fmt.Errorf("%s: valid-after: %v", where, err)
				}
			case "valid-before":
				if s.validBefore, err = parseSSHTime(value); err != nil {
					return nil, fmt.Errorf("%s: valid-before: %v", where, err)
				}
			case "cert-authority":
				return nil, fmt.Errorf("%s: cert-authority: SSH certificates are not supported; list the signers' keys", where)
			default:
				return nil, fmt.Errorf("%s: unknown option %q", where, name)
			}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseSSHTime reads ssh-keygen's YYYYMMDD[HHMM[SS]][Z] (local time
// unless Z).
func parseSSHTime(v string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		loc, v = time.UTC, v[:len(v)-1]
	}
	for _, layout := range []string{"20060102150405", "200601021504", "20060102"} {
		if len(v) == len(layout) {
			return time.ParseInLocation(layout, v, loc)
		}
	}
	return time.Time{}, fmt.Errorf("%q: want YYYYMMDD[HHMM[SS]][Z]", v)
}

// Verify checks c's signature against the trusted keys and returns who
// signed it. A key is trusted while it is valid now — an expired OpenPGP
// key or an allowed signer past its valid-before verifies nothing — not at
// the commit's date, which the signer writes.
func (k *TrustedKeys) Verify(c *object.Commit) (string, error) {
	if c.PGPSignature == "" {
		return "", ErrUnsigned
	}
	obj := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(obj); err != nil {
		return "", err
	}
	r, err := obj.Reader()
	if err != nil {
		return "", err
	}
	msg, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	sig := strings.TrimSpace(c.PGPSignature)
	switch {
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----"):
		return k.verifySSH(msg, sig)
	case strings.HasPrefix(sig, "-----BEGIN PGP SIGNATURE-----"):
		return k.verifyPGP(msg, sig)
	default:
		return "", errors.New("signature of an unsupported kind (only OpenPGP and SSH signatures are verified)")
	}
}

func (k *TrustedKeys) verifyPGP(msg []byte, sig string) (string, error) {
	if strings.Count(sig, "-----BEGIN PGP SIGNATURE-----") > 1 {
		return "", object.ErrMultipleSignatures
	}
	if len(k.pgp) == 0 {
		return "", errors.New("signed with OpenPGP, and no OpenPGP key is trusted")
	}
	e, err := openpgp.CheckArmoredDetachedSignature(k.pgp, bytes.NewReader(msg), strings.NewReader(sig), nil)
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return "", errors.New("signed by an OpenPGP key that is not trusted")
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return "", errors.New("signed by a trusted OpenPGP key that has expired")
	case err != nil:
		return "", fmt.Errorf("bad OpenPGP signature: %v", err)
	}
	for name := range e.Identities {
		return fmt.Sprintf("%s (OpenPGP %X)", name, e.PrimaryKey.Fingerprint), nil
	}
	return fmt.Sprintf("OpenPGP %X", e.PrimaryKey.Fingerprint), nil
}

func (k *TrustedKeys) verifySSH(msg []byte, armored string) (string, error) {
	sig, err := sshsig.Unarmor([]byte(armored))
	if err != nil {
		return "", fmt.Errorf("bad SSH signature: %v", err)
	}
	fp := ssh.FingerprintSHA256(sig.PublicKey)
	now := k.now()
	var why string
	for _, s := range k.ssh {
		if s.fingerprint != fp {
			continue
		}
		switch {
		case len(s.namespaces) > 0 && !matchAny(s.namespaces, "git"):
			why = fmt.Sprintf("signed by SSH key %s, trusted (%s) for namespaces %s only, not git", fp, s.where, strings.Join(s.namespaces, ","))
			continue
		case !s.validBefore.IsZero() && !now.Before(s.validBefore):
			why = fmt.Sprintf("signed by SSH key %s, whose trust (%s) expired at %s", fp, s.where, s.validBefore.UTC().Format(time.RFC3339))
			continue
		case !s.validAfter.IsZero() && now.Before(s.validAfter):
			why = fmt.Sprintf("signed by SSH key %s, trusted (%s) only from %s", fp, s.where, s.validAfter.UTC().Format(time.RFC3339))
			continue
		}
		if err := sshsig.Verify(bytes.NewReader(msg), sig, s.key, sig.HashAlgorithm, "git"); err != nil {
			return "", fmt.Errorf("bad SSH signature by %s: %v", fp, err)
		}
		return fmt.Sprintf("%s (SSH %s)", s.principals, fp), nil
	}
	if why != "" {
		return "", errors.New(why)
	}
	return "", fmt.Errorf("signed by SSH key %s, which is not trusted", fp)
}

// matchAny matches name against allowed_signers patterns (* and ?).
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(strings.TrimSpace(p), name); ok {
			return true
		}
	}
	return false
}

// unshallow is git's own depth for --unshallow: a shallow repository
// fetched at depth 0 keeps its boundary.
const unshallow = 0x7fffffff

// Since lists the commits reachable from head that known does not stop at
// (known commits and their ancestors are not walked), newest first: the
// commits of the branch since the last verified ones. A shallow history
// is deepened to the full one when the walk needs more.
func (s *Source) Since(ctx context.Context, branch string, head plumbing.Hash, known func(plumbing.Hash) bool) ([]*object.Commit, error) {
	for attempt := 0; ; attempt++ {
		commits, missing := s.walkSince(head, known)
		if missing.IsZero() {
			return commits, nil
		}
		if attempt > 0 {
			return nil, fmt.Errorf("git fetch %s: commit %s of %s's history is missing", s.URL(), missing, branch)
		}
		s.mu.Lock()
		_, err := s.fetch(ctx, branch, unshallow)
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

// walkSince walks breadth first; missing is a commit it could not read.
func (s *Source) walkSince(head plumbing.Hash, known func(plumbing.Hash) bool) (commits []*object.Commit, missing plumbing.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[plumbing.Hash]bool{head: true}
	queue := []plumbing.Hash{head}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if known(h) {
			continue
		}
		c, err := s.repo.CommitObject(h)
		if err != nil {
			return nil, h
		}
		commits = append(commits, c)
		for _, p := range c.ParentHashes {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return commits, plumbing.ZeroHash
}

// SigningKey is the public key of the agent's commit signatures, nil
// without --signing-key-file.
func (s *Source) SigningKey() ssh.PublicKey {
	if s.signer == nil {
		return nil
	}
	return s.signer.signer.PublicKey()
}

// VerifyEach verifies commits (newest first, as Since lists them) on every
// core and returns the oldest that does not verify, with why; nil when all
// do. One signature check costs ~50 µs, so a push of many commits is
// checked in parallel.
func (k *TrustedKeys) VerifyEach(commits []*object.Commit) (*object.Commit, error) {
	errs := make([]error, len(commits))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, c := range commits {
		g.Go(func() error {
			_, errs[i] = k.Verify(c)
			return nil
		})
	}
	_ = g.Wait()
	for i := len(errs) - 1; i >= 0; i-- {
		if errs[i] != nil {
			return commits[i], errs[i]
		}
	}
	return nil, nil
}
