package loadgen

import (
	"context"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// GRPC calls the standard health service (grpc.health.v1.Health/Check)
// through a Gateway over cleartext HTTP/2, as the client of a routed gRPC
// service would; the test pods answer it with their version in the
// response metadata.
type GRPC struct {
	conn   *grpc.ClientConn
	health healthpb.HealthClient
}

// DialGRPC connects to the Gateway at addr (host:port), sending authority
// as the request's :authority, which the route's hostnames match.
func DialGRPC(addr, authority string) (*GRPC, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority(authority))
	if err != nil {
		return nil, err
	}
	return &GRPC{conn: conn, health: healthpb.NewHealthClient(conn)}, nil
}

// Close closes the connection.
func (g *GRPC) Close() error { return g.conn.Close() }

// Call makes one call with the profile's headers as request metadata.
// The record's Status is 200 for an answer, 500 for an error a pod
// returned (its version known), 502 for one the Gateway returned, 0 for
// no answer.
func (g *GRPC) Call(ctx context.Context, p Profile) Record {
	pairs := []string{}
	for k, v := range p.Headers {
		pairs = append(pairs, strings.ToLower(k), v)
	}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, metadata.Pairs(pairs...)), 5*time.Second)
	defer cancel()
	name := p.Name
	if name == "" {
		name = "default"
	}
	rec := Record{At: time.Now(), Profile: name}
	var header metadata.MD
	_, err := g.health.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header))
	rec.Latency = time.Since(rec.At)
	if v := header.Get("x-version"); len(v) > 0 {
		rec.Version = v[0]
	}
	switch {
	case err == nil:
		rec.Status = http.StatusOK
	case rec.Version != "":
		rec.Status = http.StatusInternalServerError
	case status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "connection"):
		rec.Status = 0
	default:
		rec.Status = http.StatusBadGateway
	}
	return rec
}
