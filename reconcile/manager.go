package reconcile

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// FieldManager is the one field manager sluice applies with.
const FieldManager = "sluice"

// ReleaseLabel marks every applied object with its release, "<ns>.<name>".
const ReleaseLabel = "sluice.dev/release"

// ErrRefused is the class of errors for objects the guard rails refuse:
// terminal until the spec changes.
var ErrRefused = errors.New("refused")

// ErrPruneGuard is returned when a prune would delete too much.
var ErrPruneGuard = errors.New("prune guard")

// Options configures a Manager.
type Options struct {
	// Namespaces is the allowlist of namespaces releases may apply to;
	// empty allows all.
	Namespaces []string
	// Tenancy says which cluster-scoped kinds renders may hold and which
	// namespaces are protected from releases.
	Tenancy v1alpha1.Tenancy
	// PruneMaxShare is the largest share (0..1] of a release's objects one
	// prune may delete without Force; 0 means 0.5.
	PruneMaxShare float64
	// Concurrency bounds the parallel dry-runs of one apply; 0 means 4.
	Concurrency int
	// WaitInterval is how often health is polled; 0 means 500ms.
	WaitInterval time.Duration
}

// Manager applies, diffs, prunes and waits for releases' objects.
type Manager struct {
	rm     *ssa.ResourceManager
	client client.Client
	mapper meta.RESTMapper
	opts   Options
	// watch, once WatchWorkloads ran, answers Observe for Deployments.
	watch atomic.Pointer[workloadCache]
	cfg   *rest.Config
	// agent is, for a Manager made by As, the agent's own one (nil on it);
	// as holds the agent's impersonating Managers by user.
	agent *Manager
	asMu  sync.Mutex
	as    map[string]*Manager
	// namespaces are the release namespaces known to exist, so an apply
	// does not ask for its namespace every time.
	namespaces sync.Map
	// raw is rawClient's.
	rawOnce sync.Once
	raw     rest.Interface
	rawErr  error
}

// quietControllerRuntime silences controller-runtime's complaint that no
// logger was set: this package returns errors instead of logging.
var quietControllerRuntime sync.Once

// New connects a Manager to the cluster of cfg.
func New(cfg *rest.Config, opts Options) (*Manager, error) {
	quietControllerRuntime.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Mapper: mapper, HTTPClient: httpClient})
	if err != nil {
		return nil, err
	}
	if opts.PruneMaxShare <= 0 || opts.PruneMaxShare > 1 {
		opts.PruneMaxShare = 0.5
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.WaitInterval <= 0 {
		opts.WaitInterval = 500 * time.Millisecond
	}
	poller := polling.NewStatusPoller(c, mapper, polling.Options{})
	rm := ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager, Group: "sluice.dev"})
	rm.SetConcurrency(opts.Concurrency)
	return &Manager{rm: rm, client: c, mapper: mapper, opts: opts, cfg: cfg}, nil
}

// Client is the controller-runtime client the manager uses.
func (m *Manager) Client() client.Client { return m.client }

// ReleaseLabelValue is the label value for the release "<ns>/<name>".
func ReleaseLabelValue(release string) string {
	for i := range len(release) {
		if release[i] == '/' {
			return release[:i] + "." + release[i+1:]
		}
	}
	return release
}

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}
