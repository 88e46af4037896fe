package shard

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Options configures an Elector.
type Options struct {
	Leases    coordclient.LeasesGetter
	Namespace string
	// Shards is how many shards the fleet is split into.
	Shards int
	// Identity names this replica in the Leases (unique per process).
	Identity string
	// LeaseDuration is how long a Lease not renewed stays its holder's
	// (15 s); RenewDeadline is how long a holder goes on working on a
	// shard it could not renew (10 s: it stops well before another
	// replica may take the shard over); RetryPeriod is the tick (2 s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *zap.Logger
	// OnAcquire, when set, is called after a tick took a shard, so the
	// agent looks at its releases at once.
	OnAcquire func()
}

// Elector holds this replica's shards: it renews their Leases, takes free
// ones while it holds less than its share of the live replicas', and gives
// up the ones above its share once no work on them is in flight.
type Elector struct {
	opts   Options
	leases coordclient.LeaseInterface
	member string

	mu sync.Mutex
	// held maps each shard held to the last time its Lease was renewed.
	held map[int]time.Time
	// leaving are shards being given up: no new work starts on them; the
	// Lease is cleared once inflight drops to zero.
	leaving  map[int]bool
	recent   map[int]time.Time
	inflight map[int]int
	// observed remembers each Lease's version and when this replica saw
	// it change: a Lease is free when it has not changed for its
	// duration by this replica's own clock (clocks of replicas may
	// differ).
	observed map[string]observation
	started  bool
}

type observation struct {
	version string
	at      time.Time
	free    bool
	freeAt  time.Time
}

// NewElector returns an Elector; Run makes it take part.
func NewElector(opts Options) (*Elector, error) {
	if opts.Shards < 1 {
		return nil, fmt.Errorf("--shards must be at least 1, got %d", opts.Shards)
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = 15 * time.Second
	}
	if opts.RenewDeadline <= 0 {
		opts.RenewDeadline = 10 * time.Second
	}
	if opts.RetryPeriod <= 0 {
		opts.RetryPeriod = 2 * time.Second
	}
	if opts.RenewDeadline >= opts.LeaseDuration {
		return nil, fmt.Errorf("the renew deadline (%s) must be shorter than the lease duration (%s)", opts.RenewDeadline, opts.LeaseDuration)
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	h := fnv.New32a()
	h.Write([]byte(opts.Identity))
	return &Elector{opts: opts, leases: opts.Leases.Leases(opts.Namespace), member: fmt.Sprintf("sluice-member-%08x", h.Sum32()),
		held: map[int]time.Time{}, leaving: map[int]bool{}, recent: map[int]time.Time{}, inflight: map[int]int{}, observed: map[string]observation{}}, nil
}

// Shards is how many shards the fleet is split into.
func (e *Elector) Shards() int { return e.opts.Shards }

// Identity is this replica's name in the Leases.
func (e *Elector) Identity() string { return e.opts.Identity }

// Shard is the release's shard.
func (e *Elector) Shard(release string) int { return Of(release, e.opts.Shards) }

// Acquire starts work on a release when this replica owns its shard now:
// held, renewed within the renew deadline, not being given up. done ends
// the work; a shard is not given up while work on it is in flight.
func (e *Elector) Acquire(release string) (done func(), ok bool) {
	s := e.Shard(release)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.valid(s, time.Now()) {
		return nil, false
	}
	e.inflight[s]++
	var once sync.Once
	return func() {
		once.Do(func() {
			e.mu.Lock()
			e.inflight[s]--
			e.mu.Unlock()
		})
	}, true
}

// Leads says whether this replica owns shard 0, whose owner also runs the
// fleet-wide jobs (the image scanner, the promoter).
func (e *Elector) Leads() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.valid(0, time.Now())
}

// Owned lists the shards this replica owns now.
func (e *Elector) Owned() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []int
	for s := range e.held {
		if e.valid(s, time.Now()) {
			out = append(out, s)
		}
	}
	sort.Ints(out)
	return out
}

func (e *Elector) valid(s int, now time.Time) bool {
	renewed, ok := e.held[s]
	return ok && !e.leaving[s] && now.Sub(renewed) < e.opts.RenewDeadline
}

// Run takes part until ctx ends, then gives up every shard held (after
// the work in flight, bounded by the renew deadline) so another replica
// takes them at once.
func (e *Elector) Run(ctx context.Context) {
	wait.JitterUntilWithContext(ctx, e.tick, e.opts.RetryPeriod, 0.2, true)
	e.mu.Lock()
	for s := range e.held {
		e.leaving[s] = true
	}
	e.mu.Unlock()
	deadline := time.Now().Add(e.opts.RenewDeadline)
	for {
		e.mu.Lock()
		busy := 0
		for s := range e.held {
			busy += e.inflight[s]
		}
		e.mu.Unlock()
		if busy == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	e.releaseAll(rctx)
	if err := e.leases.Delete(rctx, e.member, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		e.opts.Log.Warn("could not delete the member Lease", zap.String("lease", e.member), zap.Error(err))
	}
}

func (e *Elector) releaseAll(ctx context.Context) {
	list, err := e.leases.List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range list.Items {
		l := &list.Items[i]
		if s, ok := e.shardOf(l.Name); ok && e.held[s] != (time.Time{}) && holder(l) == e.opts.Identity {
			e.clear(ctx, l, s)
		}
	}
}

// tick renews this replica's membership and shards, then balances.
func (e *Elector) tick(ctx context.Context) {
	if e.balance(ctx) && e.opts.OnAcquire != nil {
		e.opts.OnAcquire()
	}
}

// balance is one tick; it reports whether a shard was taken.
func (e *Elector) balance(ctx context.Context) (took bool) {
	now := time.Now()
	if err := e.renewMember(ctx, now); err != nil {
		e.opts.Log.Warn("could not renew the member Lease", zap.String("lease", e.member), zap.Error(err))
	}
	list, err := e.leases.List(ctx, metav1.ListOptions{})
	if err != nil {
		e.opts.Log.Warn("could not list the shard Leases", zap.Error(err))
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now = time.Now()
	byShard := map[int]*coordinationv1.Lease{}
	members := 1
	for i := range list.Items {
		l := &list.Items[i]
		free := e.observe(l, now)
		if s, ok := e.shardOf(l.Name); ok {
			byShard[s] = l
		} else if strings.HasPrefix(l.Name, "sluice-member-") && l.Name != e.member && !free {
			members++
		}
	}
	views := map[int]seen{}
	for s := range e.opts.Shards {
		l := byShard[s]
		if l == nil {
			// Missing: free since first seen missing.
			o := e.observeMissing(LeaseName(s), now)
			views[s] = seen{free: true, freeFor: now.Sub(o.freeAt)}
			continue
		}
		o := e.observed[l.Name]
		v := seen{holder: holder(l), free: o.free}
		if o.free {
			v.freeFor = now.Sub(o.freeAt)
		}
		views[s] = v
	}
	// Renew what is held; drop what another replica holds now.
	var keep []int
	for s := range e.held {
		l := byShard[s]
		if l == nil || holder(l) != e.opts.Identity {
			e.opts.Log.Warn("shard lost", zap.Int("shard", s), zap.String("holder", views[s].holder))
			delete(e.held, s)
			delete(e.leaving, s)
			continue
		}
		if e.leaving[s] {
			if e.inflight[s] == 0 {
				e.clear(ctx, l, s)
			}
			continue
		}
		if err := e.renew(ctx, l, now); err != nil {
			e.opts.Log.Warn("could not renew a shard", zap.Int("shard", s), zap.Error(err))
		} else {
			e.held[s] = now
		}
		keep = append(keep, s)
	}
	for s, at := range e.recent {
		if now.Sub(at) > 2*e.opts.LeaseDuration {
			delete(e.recent, s)
		}
	}
	if !e.started {
		// The first tick only announces this replica: replicas starting
		// together then see each other before any takes a shard.
		e.started = true
		return false
	}
	recent := map[int]bool{}
	for s := range e.recent {
		recent[s] = true
	}
	d := decide(e.opts.Identity, e.opts.Shards, members, views, keep, recent, 3*e.opts.RetryPeriod)
	for _, s := range d.release {
		e.opts.Log.Info("giving a shard up", zap.Int("shard", s), zap.Int("replicas", members))
		e.leaving[s] = true
		e.recent[s] = now
		if e.inflight[s] == 0 {
			e.clear(ctx, byShard[s], s)
		}
	}
	for _, s := range d.acquire {
		if err := e.take(ctx, byShard[s], s, now); err != nil {
			if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
				e.opts.Log.Warn("could not take a shard", zap.Int("shard", s), zap.Error(err))
			}
			continue
		}
		e.held[s] = now
		took = true
		e.opts.Log.Info("shard acquired", zap.Int("shard", s), zap.Int("replicas", members), zap.String("identity", e.opts.Identity))
	}
	return took
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func (e *Elector) shardOf(name string) (int, bool) {
	var s int
	if _, err := fmt.Sscanf(name, "sluice-shard-%d", &s); err != nil || LeaseName(s) != name || s >= e.opts.Shards {
		return 0, false
	}
	return s, true
}

// observe records the Lease's version and says whether it is free: no
// holder, or unchanged for its duration on this replica's clock.
func (e *Elector) observe(l *coordinationv1.Lease, now time.Time) bool {
	o, ok := e.observed[l.Name]
	if !ok || o.version != l.ResourceVersion {
		o = observation{version: l.ResourceVersion, at: now}
	}
	duration := e.opts.LeaseDuration
	if l.Spec.LeaseDurationSeconds != nil {
		duration = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	free := holder(l) == "" || now.Sub(o.at) >= duration
	if free && !o.free {
		o.freeAt = now
		if holder(l) != "" {
			o.freeAt = o.at.Add(duration)
		}
	}
	o.free = free
	e.observed[l.Name] = o
	return free
}

func (e *Elector) observeMissing(name string, now time.Time) observation {
	o, ok := e.observed[name]
	if !ok || o.version != "" {
		o = observation{at: now, free: true, freeAt: now}
		e.observed[name] = o
	}
	return o
}

func (e *Elector) seconds() *int32 {
	s := int32(e.opts.LeaseDuration / time.Second)
	return &s
}

func (e *Elector) renewMember(ctx context.Context, now time.Time) error {
	l, err := e.leases.Get(ctx, e.member, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		id := e.opts.Identity
		_, err = e.leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: e.member},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: e.seconds(), RenewTime: &metav1.MicroTime{Time: now}}}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	return e.renew(ctx, l, now)
}

func (e *Elector) renew(ctx context.Context, l *coordinationv1.Lease, now time.Time) error {
	l = l.DeepCopy()
	l.Spec.RenewTime = &metav1.MicroTime{Time: now}
	l.Spec.LeaseDurationSeconds = e.seconds()
	updated, err := e.leases.Update(ctx, l, metav1.UpdateOptions{})
	if err == nil {
		e.observe(updated, now)
	}
	return err
}

// take acquires a free shard's Lease: created when missing, else updated
// at the version seen free (a conflict means another replica was first).
func (e *Elector) take(ctx context.Context, l *coordinationv1.Lease, s int, now time.Time) error {
	id := e.opts.Identity
	spec := coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: e.seconds(),
		AcquireTime: &metav1.MicroTime{Time: now}, RenewTime: &metav1.MicroTime{Time: now}}
	var err error
	var got *coordinationv1.Lease
	if l == nil {
		got, err = e.leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName(s)}, Spec: spec}, metav1.CreateOptions{})
	} else {
		l = l.DeepCopy()
		transitions := int32(0)
		if l.Spec.LeaseTransitions != nil {
			transitions = *l.Spec.LeaseTransitions
		}
		if holder(l) != "" {
			transitions++
		}
		spec.LeaseTransitions = &transitions
		l.Spec = spec
		got, err = e.leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err == nil {
		e.observe(got, now)
	}
	return err
}

// clear gives a held shard's Lease up: holder emptied, so the replica
// that takes it need not wait for it to expire.
func (e *Elector) clear(ctx context.Context, l *coordinationv1.Lease, s int) {
	if l != nil {
		l = l.DeepCopy()
		l.Spec.HolderIdentity = nil
		l.Spec.AcquireTime, l.Spec.RenewTime = nil, nil
		if _, err := e.leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			e.opts.Log.Warn("could not give a shard up; it expires instead", zap.Int("shard", s), zap.Error(err))
		}
	}
	delete(e.held, s)
	delete(e.leaving, s)
	e.opts.Log.Info("shard given up", zap.Int("shard", s))
}
