package agent

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Options are the agent's flags; each is also read from SLUICE_<FLAG>.
type Options struct {
	// PrometheusAddress is the Prometheus-compatible API of prometheus and
	// compare checks that name no address of their own.
	PrometheusAddress string
	Repo              string
	Branch            string
	Path              string
	Interval          time.Duration
	StatusBranch      string
	Kubeconfig        string
	Namespaces        []string
	// Tenancy: the cluster-scoped kinds renders may hold, the protected
	// namespaces releases may target all the same.
	Tenancy v1alpha1.Tenancy
	// SOPSAgeKeyFiles hold the age identities SOPS-encrypted files in
	// releases are decrypted with.
	SOPSAgeKeyFiles []string
	// DefaultServiceAccount, in each release's namespace, is who releases
	// without spec.serviceAccountName are applied as (empty: the agent).
	DefaultServiceAccount string
	GitUsername           string
	GitPasswordFile       string
	SSHKeyFile            string
	KnownHostsFile        string
	Author                string
	SigningKeyFile        string
	// VerifyCommits is head, all or off (""); TrustedKeysFiles hold the
	// OpenPGP keys and SSH allowed signers it trusts.
	VerifyCommits      string
	TrustedKeysFiles   []string
	VerifyCommitsSince string
	Listen             string
	Pprof              bool
	LeaderElect        bool
	LeaderElectNS      string
	// KubeQPS and KubeBurst bound the agent's requests to the API server
	// (client-go's token bucket).
	KubeQPS   float32
	KubeBurst int
	// Shards splits the fleet between replicas, each owning the shards
	// whose Lease (sluice-shard-<i>) it holds.
	Shards           int
	Once             bool
	LogFormat        string
	LogLevel         string
	CacheDir         string
	Concurrency      int
	NotifyURLs       []string
	NotifyURLFiles   []string
	AllowMassRemoval bool
	AdvertiseAddress string
	HookSecretFile   string
	PprofListen      string
	// ImageUpdates turns on the registry scanner (spec.imageUpdates);
	// ImageInterval is how often it scans; ImageDockerConfigs are Docker
	// config files (or dockerconfigjson Secrets) with registry credentials.
	ImageUpdates       bool
	ImageInterval      time.Duration
	ImageDockerConfigs []string
	// ImageBasicAuth maps a registry host to a directory holding the
	// files username and password (a basic-auth Secret mounted).
	ImageBasicAuth map[string]string
	// ImageHookSecretFile holds the bearer token registry notifications
	// to POST /hook/registry must carry.
	ImageHookSecretFile string
	// ImageUpdatesBranch, when set, is the prefix of the branches image
	// updates are pushed to for pull requests (<prefix>/<ns>/<name>)
	// instead of the spec branch.
	ImageUpdatesBranch string
	// UI serves the read-only dashboard under /ui/ on Listen.
	UI bool
	// Cluster names the agent's cluster in a repository of several:
	// releases under clusters/<cluster>/releases and status on
	// sluice/status/<cluster> unless --path and --status-branch say
	// otherwise.
	Cluster string
	// PromotionInterval is how often spec.promotion's upstreams are read;
	// PromoteToBranch, when set, is the prefix of the branches promotions
	// are pushed to for pull requests instead of the spec branch.
	PromotionInterval time.Duration
	PromoteToBranch   string
}

// BindFlags registers the options on fs with their defaults.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.PrometheusAddress, "prometheus-address", "", "Prometheus-compatible API for prometheus and compare checks that give no address (e.g. http://prometheus.monitoring:9090)")
	fs.StringVar(&o.Repo, "repo", "", "Git repository: https://, ssh://, git@host:path, file:// or a local path (required)")
	fs.StringVar(&o.Branch, "branch", "main", "branch holding the release specs")
	fs.StringVar(&o.Path, "path", "releases", "directory in the repository to scan for release.yaml files")
	fs.DurationVar(&o.Interval, "interval", 10*time.Second, "how often to poll Git (ls-remote; a fetch only when a branch moved)")
	fs.StringVar(&o.StatusBranch, "status-branch", "sluice/status", "branch the agent commits status.yaml files to; the spec branch's name puts status next to the spec")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG)")
	fs.StringSliceVar(&o.Namespaces, "namespaces", nil, "namespaces releases may deploy to (default: all)")
	BindTenancyFlags(fs, &o.Tenancy)
	fs.StringArrayVar(&o.SOPSAgeKeyFiles, "sops-age-key-file", nil, "age identities (age-keygen's AGE-SECRET-KEY-1... lines; mount a Secret) that decrypt SOPS-encrypted YAML files in releases as they render; repeatable")
	fs.StringVar(&o.DefaultServiceAccount, "default-service-account", "", "ServiceAccount, in each release's namespace, that releases without spec.serviceAccountName are applied, pruned and read as (impersonation); empty: the agent's own identity")
	fs.StringVar(&o.GitUsername, "git-username", "", "HTTP(S) username")
	fs.StringVar(&o.GitPasswordFile, "git-password-file", "", "file holding the HTTP(S) password or token")
	fs.StringVar(&o.SSHKeyFile, "ssh-key-file", "", "SSH private key file")
	fs.StringVar(&o.KnownHostsFile, "known-hosts-file", "", "known_hosts file; SSH host keys are always checked")
	fs.StringVar(&o.SigningKeyFile, "signing-key-file", "", "SSH private key to sign the agent's commits with (Git's gpg.format=ssh)")
	fs.StringVar(&o.VerifyCommits, "verify-commits", "off", "apply only spec commits signed by a trusted key: head (the head commit) or all (every commit since the last verified one, merges' sides included); off")
	fs.StringArrayVar(&o.TrustedKeysFiles, "trusted-keys-file", nil, "trusted signers for --verify-commits: an armored OpenPGP public keyring, or an SSH allowed_signers file (as gpg.ssh.allowedSignersFile); repeatable")
	fs.StringVar(&o.VerifyCommitsSince, "verify-commits-since", "", "with --verify-commits=all, the commit checking starts after (it and its history are taken as they are: where signing began); default: the whole history must verify")
	fs.StringVar(&o.Author, "author", "sluice <sluice@localhost>", "author of the agent's commits")
	fs.StringVar(&o.Listen, "listen", ":8080", "address for /metrics, /healthz and /readyz (empty: off)")
	fs.BoolVar(&o.Pprof, "pprof", false, "serve Go's profiles under /debug/pprof/ on --pprof-listen (a loopback address of its own)")
	fs.StringVar(&o.PprofListen, "pprof-listen", "127.0.0.1:6060", "loopback address for --pprof")
	fs.BoolVar(&o.ImageUpdates, "image-updates", false, "scan the registries of the images releases name in spec.imageUpdates and commit newer tags to their kustomizations")
	fs.DurationVar(&o.ImageInterval, "image-interval", time.Minute, "how often --image-updates lists each image's tags (give or take a tenth)")
	fs.StringVar(&o.ImageUpdatesBranch, "image-updates-branch", "", "push image updates to <this>/<namespace>/<name> branches, for pull requests, instead of committing them on the spec branch")
	fs.StringVar(&o.ImageHookSecretFile, "image-hook-secret-file", "", "file holding the token registry push notifications to POST /hook/registry must send as Authorization: Bearer (Docker distribution's notifications headers)")
	fs.StringArrayVar(&o.ImageDockerConfigs, "image-docker-config", nil, "Docker config file (config.json, or a mounted dockerconfigjson Secret's key) with registry credentials for --image-updates; repeatable")
	fs.StringToStringVar(&o.ImageBasicAuth, "image-basic-auth", nil, "HOST=DIR: registry credentials for --image-updates from the files DIR/username and DIR/password (a kubernetes.io/basic-auth Secret mounted as a volume); repeatable")
	fs.StringVar(&o.Cluster, "cluster", "", "this cluster's name in a repository of several: releases from clusters/<name>/releases and status to sluice/status/<name> (unless --path, --status-branch say otherwise); spec.promotion names other clusters' releases")
	fs.DurationVar(&o.PromotionInterval, "promotion-interval", 30*time.Second, "how often releases with spec.promotion read their upstream's status (give or take a tenth)")
	fs.StringVar(&o.PromoteToBranch, "promote-to-branch", "", "push promotions to <this>/<cluster>/<namespace>/<name>/<version> branches, for pull requests, instead of committing them on the spec branch")
	fs.BoolVar(&o.UI, "ui", true, "serve the read-only dashboard (releases, steps, weight timelines, from Git) under /ui/ on --listen")
	fs.StringVar(&o.HookSecretFile, "hook-secret-file", "", "file holding the push webhooks' secret: POST /hook then counts only hooks signed with it (GitHub X-Hub-Signature-256, GitLab X-Gitlab-Token, Gitea/Forgejo signatures)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect a leader through a Lease; only the leader applies and commits")
	fs.StringVar(&o.AdvertiseAddress, "advertise-address", "", "host:port where the other replicas reach this one's --listen (under leader election a follower forwards POST /hook to the leader's); deploy/ sets it from the pod IP")
	fs.StringVar(&o.LeaderElectNS, "leader-elect-namespace", "sluice-system", "namespace of the leader election Lease (and of the shard Leases)")
	fs.IntVar(&o.Shards, "shards", 0, "split the releases into this many shards by consistent hashing of <namespace>/<name>, for a Deployment of several replicas: each replica reconciles the shards whose Lease (sluice-shard-<i>, in --leader-elect-namespace) it holds, and takes over a dead replica's within the lease duration (0: one replica does all; not with --leader-elect)")
	fs.BoolVar(&o.Once, "once", false, "run one pass, then exit 0 if every release is healthy or waiting, 1 if any failed")
	fs.StringVar(&o.LogFormat, "log-format", "json", "log format: json or console")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.CacheDir, "cache-dir", "", "where the Git repository is kept on disk (default: a directory under the OS cache)")
	fs.IntVar(&o.Concurrency, "concurrency", 4, "releases reconciled at once")
	fs.Float32Var(&o.KubeQPS, "kube-api-qps", 500, "requests per second the agent may make to the API server (client-side; the API server's priority and fairness still applies)")
	fs.IntVar(&o.KubeBurst, "kube-api-burst", 1000, "requests the agent may make to the API server in a burst above --kube-api-qps")
	fs.BoolVar(&o.AllowMassRemoval, "allow-mass-removal", false, "remove the objects of every managed release when all their release files vanish at once (otherwise refused as a likely empty checkout or wrong --path)")
	fs.StringArrayVar(&o.NotifyURLs, "notify-url", nil, "webhook notified on phase changes (JSON; Slack incoming-webhook URLs get Slack's format); repeatable")
	fs.StringArrayVar(&o.NotifyURLFiles, "notify-url-file", nil, "file holding a --notify-url (a mounted Secret: the URL's path is often the credential); repeatable")
}

// ApplyEnv sets every flag not given on the command line from
// SLUICE_<FLAG> (dashes as underscores, upper case), e.g. SLUICE_REPO.
func ApplyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "SLUICE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", name, serr)
			}
		}
	})
	return err
}

// notifyURLs is --notify-url plus the URL in each --notify-url-file.
// ApplyCluster gives --cluster's defaults to --path and --status-branch
// where fs (the parsed flags, environment applied) did not set them.
func (o *Options) ApplyCluster(fs *pflag.FlagSet) error {
	if o.Cluster == "" {
		return nil
	}
	if err := v1alpha1.ValidateClusterName(o.Cluster); err != nil {
		return fmt.Errorf("--cluster: %w", err)
	}
	if !fs.Changed("path") {
		o.Path = v1alpha1.ClusterReleasesPath(o.Cluster)
	}
	if !fs.Changed("status-branch") {
		o.StatusBranch = v1alpha1.ClusterStatusBranch(o.Cluster)
	}
	return nil
}

func (o *Options) notifyURLs() ([]string, error) {
	urls := append([]string(nil), o.NotifyURLs...)
	for _, f := range o.NotifyURLFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--notify-url-file: %w", err)
		}
		u := strings.TrimSpace(string(b))
		if u == "" {
			return nil, fmt.Errorf("--notify-url-file %s is empty", f)
		}
		urls = append(urls, u)
	}
	return urls, nil
}

// author splits "Name <email>".
func (o *Options) author() (string, string) {
	name, email, ok := strings.Cut(o.Author, "<")
	if !ok {
		return strings.TrimSpace(o.Author), "sluice@localhost"
	}
	return strings.TrimSpace(name), strings.TrimSuffix(strings.TrimSpace(email), ">")
}

// BindTenancyFlags registers what releases may touch beyond their own
// namespace; validate, render and diff take the same flags as the agent.
func BindTenancyFlags(fs *pflag.FlagSet, t *v1alpha1.Tenancy) {
	fs.StringSliceVar(&t.ClusterScoped, "allow-cluster-scoped", nil, "cluster-scoped kinds releases may create, as Kind or Kind.group (e.g. ClusterRole.rbac.authorization.k8s.io); default: none but the release's own Namespace")
	fs.StringVar(&t.AgentNamespace, "agent-namespace", v1alpha1.DefaultAgentNamespace, "the agent's own namespace: no release may target it (deploy/ sets it from the pod's namespace)")
	fs.StringSliceVar(&t.AllowSystem, "allow-system-namespace", nil, "protected namespaces (kube-*, --agent-namespace) releases may target all the same")
}
