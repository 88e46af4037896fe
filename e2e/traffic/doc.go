// Package traffic holds the stories that send real requests through a
// sluice rollout: a real control plane whose pods answer (internal/podrunner),
// Traefik as the Gateway API data plane, and a load generator
// (internal/loadgen), all inside a private network namespace
// (internal/netns), so nothing touches the host's network. They assert
// what users receive, next to what the objects say.
package traffic
