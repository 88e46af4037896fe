package gitsource

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"

	"github.com/sluice-dev/sluice/internal/redact"
)

// Defaults for Options.
const (
	DefaultBranch       = "main"
	DefaultStatusBranch = "sluice/status"
	remoteName          = "origin"
)

// Options says which repository to read and how to reach it.
type Options struct {
	// URL of the repository: https://, http://, ssh://, scp-like
	// git@host:path, file:// or a local path.
	URL string
	// Branch holds the spec (default main).
	Branch string
	// StatusBranch receives the agent's status commits (default
	// sluice/status); the spec branch's name puts status next to the spec.
	StatusBranch string
	// Dir is where the on-disk repository lives; created if missing.
	Dir string

	// Username and PasswordFile authenticate over HTTP(S) (basic or token).
	Username     string
	PasswordFile string
	// SSHKeyFile (and SSHKeyPassphraseFile) authenticate over SSH; the
	// server's host key is always checked against KnownHostsFile.
	SSHKeyFile           string
	SSHKeyPassphraseFile string
	KnownHostsFile       string

	// AuthorName and AuthorEmail sign the agent's commits.
	AuthorName  string
	AuthorEmail string
	// SigningKeyFile, when set, SSH-signs every commit (Git's
	// gpg.format=ssh), with SigningKeyPassphraseFile if the key has one.
	SigningKeyFile           string
	SigningKeyPassphraseFile string
}

// Source is one repository kept on disk. Methods are safe for concurrent
// use; fetches and commits are serialised.
type Source struct {
	opts    Options
	url     string
	auth    transport.AuthMethod
	secrets []string
	signer  *sshSigner

	mu      sync.RWMutex
	repo    *git.Repository
	storage *filesystem.Storage

	// historyMu guards history, the full copy of the status branch
	// (StatusHistory).
	historyMu sync.Mutex
	history   *git.Repository
}

// Open prepares the on-disk repository for opts.URL without contacting it.
func Open(opts Options) (*Source, error) {
	if opts.Branch == "" {
		opts.Branch = DefaultBranch
	}
	if opts.StatusBranch == "" {
		opts.StatusBranch = DefaultStatusBranch
	}
	if opts.AuthorName == "" {
		opts.AuthorName = "sluice"
	}
	if opts.AuthorEmail == "" {
		opts.AuthorEmail = "sluice@localhost"
	}
	if opts.Dir == "" {
		return nil, errors.New("gitsource: Options.Dir is required")
	}
	for flag, b := range map[string]string{"--branch": opts.Branch, "--status-branch": opts.StatusBranch} {
		if err := ValidateBranch(b); err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
	}
	boundedHTTP()
	s := &Source{opts: opts}
	u, err := normalizeURL(opts.URL)
	if err != nil {
		return nil, err
	}
	s.url = u
	if err := s.setupAuth(); err != nil {
		return nil, err
	}
	if opts.SigningKeyFile != "" {
		if s.signer, err = loadSigner(opts.SigningKeyFile, opts.SigningKeyPassphraseFile); err != nil {
			return nil, err
		}
	}
	if err := s.initRepo(); err != nil {
		return nil, err
	}
	return s, nil
}

// ValidateBranch checks a branch name as Git does (git check-ref-format):
// no wildcard, no "..", no control characters, ... A "*" would otherwise
// become a wildcard refspec and fetch every branch.
func ValidateBranch(name string) error {
	if err := plumbing.NewBranchReferenceName(name).Validate(); err != nil || strings.HasPrefix(name, "refs/") {
		return fmt.Errorf("%q is not a valid branch name", name)
	}
	return nil
}

// Options returns the options the source was opened with, defaults filled.
func (s *Source) Options() Options { return s.opts }

// SameBranch reports whether status commits go to the spec branch.
func (s *Source) SameBranch() bool { return s.opts.Branch == s.opts.StatusBranch }

// normalizeURL turns a local path into a file:// URL and checks the forms.
func normalizeURL(raw string) (string, error) {
	switch {
	case raw == "":
		return "", errors.New("gitsource: repository URL is empty")
	case strings.HasPrefix(raw, "https://"), strings.HasPrefix(raw, "http://"),
		strings.HasPrefix(raw, "ssh://"), strings.HasPrefix(raw, "file://"):
		if _, err := url.Parse(raw); err != nil {
			return "", fmt.Errorf("gitsource: invalid repository URL %s", Redact(raw))
		}
		return raw, nil
	case isSCPLike(raw):
		return raw, nil
	}
	abs, err := filepath.Abs(raw)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("gitsource: repository %s: %w", raw, err)
	}
	return "file://" + abs, nil
}

// isSCPLike matches user@host:path (not a Windows drive or a URL).
func isSCPLike(s string) bool {
	at := strings.Index(s, "@")
	colon := strings.Index(s, ":")
	return at > 0 && colon > at+1 && !strings.Contains(s[:colon], "/")
}

// LocalPath is the repository's directory when the URL is local, else "".
func (s *Source) LocalPath() string {
	if p, ok := strings.CutPrefix(s.url, "file://"); ok {
		return p
	}
	return ""
}

func readSecret(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (s *Source) setupAuth() error {
	// A password in the URL becomes basic auth and leaves the URL, so the
	// remote in the on-disk repository's config holds no credential.
	var urlUser, urlPassword string
	if parsed, err := url.Parse(s.url); err == nil && parsed.User != nil {
		if p, ok := parsed.User.Password(); ok {
			urlUser, urlPassword = parsed.User.Username(), p
			s.secrets = append(s.secrets, p)
			parsed.User = url.User(parsed.User.Username())
			s.url = parsed.String()
		}
	}
	u := s.url
	switch {
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		pw, err := readSecret(s.opts.PasswordFile)
		if err != nil {
			return err
		}
		if pw == "" && urlPassword != "" {
			pw = urlPassword
			if s.opts.Username == "" {
				s.opts.Username = urlUser
			}
		}
		if pw != "" || s.opts.Username != "" {
			user := s.opts.Username
			if user == "" {
				user = "git" // token auth: any non-empty user
			}
			s.auth = &githttp.BasicAuth{Username: user, Password: pw}
			s.secrets = append(s.secrets, pw)
		}
	case strings.HasPrefix(u, "ssh://"), isSCPLike(u):
		if s.opts.SSHKeyFile == "" {
			return errors.New("gitsource: an SSH URL needs --ssh-key-file")
		}
		if s.opts.KnownHostsFile == "" {
			return errors.New("gitsource: an SSH URL needs --known-hosts-file: host keys are always checked")
		}
		pass, err := readSecret(s.opts.SSHKeyPassphraseFile)
		if err != nil {
			return err
		}
		user, host := sshUserHost(u)
		keys, err := gitssh.NewPublicKeysFromFile(user, s.opts.SSHKeyFile, pass)
		if err != nil {
			return fmt.Errorf("gitsource: ssh key %s: %v", s.opts.SSHKeyFile, redactString(err.Error(), []string{pass}))
		}
		db, err := knownhosts.NewDB(s.opts.KnownHostsFile)
		if err != nil {
			return fmt.Errorf("gitsource: known hosts %s: %w", s.opts.KnownHostsFile, err)
		}
		keys.HostKeyCallback = hostKeyCallback(db)
		keys.HostKeyAlgorithms = db.HostKeyAlgorithms(host)
		s.auth = keys
		s.secrets = append(s.secrets, pass)
	}
	return nil
}

// hostKeyCallback refuses unknown and changed host keys with a message that
// says which and where to look.
func hostKeyCallback(db *knownhosts.HostKeyDB) ssh.HostKeyCallback {
	check := db.HostKeyCallback()
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		if err == nil {
			return nil
		}
		if knownhosts.IsHostKeyChanged(err) {
			return fmt.Errorf("host key for %s CHANGED (%s %s): refusing to connect; if the server's key really changed, update the known_hosts file", hostname, key.Type(), ssh.FingerprintSHA256(key))
		}
		if knownhosts.IsHostUnknown(err) {
			return fmt.Errorf("host key for %s is unknown (%s %s): add it to the known_hosts file", hostname, key.Type(), ssh.FingerprintSHA256(key))
		}
		return err
	}
}

// sshUserHost returns the user (default git) and host:port (default 22).
func sshUserHost(u string) (string, string) {
	if strings.HasPrefix(u, "ssh://") {
		p, err := url.Parse(u)
		if err == nil {
			user := "git"
			if p.User != nil && p.User.Username() != "" {
				user = p.User.Username()
			}
			port := p.Port()
			if port == "" {
				port = "22"
			}
			return user, net.JoinHostPort(p.Hostname(), port)
		}
	}
	at := strings.Index(u, "@")
	colon := strings.Index(u, ":")
	return u[:at], net.JoinHostPort(u[at+1:colon], "22")
}

// initRepo opens or creates the bare repository in Dir with the remote.
func (s *Source) initRepo() error {
	if err := os.MkdirAll(s.opts.Dir, 0o755); err != nil {
		return err
	}
	// Up to 16 pack files stay open between reads: a walk of many commits (the
	// commits since the last verified one) otherwise opens the pack for
	// each object. Decoded objects are cached up to ObjectCacheSize (go-git's
	// default, 96 MiB, held the status trees of every group commit: most of
	// a fleet agent's heap).
	st := filesystem.NewStorageWithOptions(osfs.New(s.opts.Dir), cache.NewObjectLRU(ObjectCacheSize), filesystem.Options{MaxOpenDescriptors: 16})
	repo, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.Init(st, nil)
	}
	if err != nil {
		return fmt.Errorf("gitsource: repository in %s: %w", s.opts.Dir, err)
	}
	if r, err := repo.Remote(remoteName); err == nil && r.Config().URLs[0] != s.url {
		if err := repo.DeleteRemote(remoteName); err != nil {
			return err
		}
	}
	if _, err := repo.Remote(remoteName); err != nil {
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{s.url}}); err != nil {
			return err
		}
	}
	s.repo, s.storage = repo, st
	return nil
}

// reset throws the on-disk repository away and starts again (after a
// shallow fetch error or rewritten history).
func (s *Source) reset() error {
	if s.storage != nil {
		_ = s.storage.Close()
	}
	if err := os.RemoveAll(s.opts.Dir); err != nil {
		return err
	}
	return s.initRepo()
}

// Redact removes the secrets from a URL for display (redact.URL).
func Redact(raw string) string { return redact.URL(raw) }

func redactString(s string, secrets []string) string { return redact.String(s, secrets...) }

// redactedError hides credentials from an error's text.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// wrap makes an error safe to log: no credentials, the URL redacted.
func (s *Source) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("git %s %s: %s", op, Redact(s.url), redactString(err.Error(), s.secrets))
	return &redactedError{msg: msg, err: err}
}

// URL is the repository URL, credentials redacted.
func (s *Source) URL() string { return Redact(s.url) }

// ObjectCacheSize bounds go-git's cache of decoded objects: the trees a
// pass reads are cached by TreeFS itself; this one serves the walks and
// the writes.
const ObjectCacheSize = 8 * cache.MiByte
