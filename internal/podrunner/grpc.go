package podrunner

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// GRPC: every port also answers gRPC over cleartext HTTP/2 (h2c), as a
// gRPC service's pod would: the standard health service
// (grpc.health.v1.Health/Check), whose answer carries the version and pod
// in the response metadata (x-version, x-pod) and fails with Unavailable
// as the behaviour says. An HTTP/2 request whose content type is
// application/grpc is gRPC; every other request is plain HTTP.

// grpcServer returns the gRPC server of one container's behaviour.
func grpcServer(b *behaviour) *grpc.Server {
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		n := b.count.Add(1)
		if b.latency > 0 {
			select {
			case <-time.After(b.latency):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		_ = grpc.SetHeader(ctx, metadata.Pairs(strings.ToLower(VersionHeader), b.version, strings.ToLower(PodHeader), b.pod))
		if (b.failAfter >= 0 && n > b.failAfter) || (b.errorRate > 0 && rand.Float64() < b.errorRate) {
			return nil, status.Errorf(codes.Unavailable, "version=%s pod=%s failing", b.version, b.pod)
		}
		return next(ctx, req)
	}))
	healthpb.RegisterHealthServer(s, health.NewServer())
	return s
}

// withGRPC sends gRPC requests to g and the rest to h.
func withGRPC(h http.Handler, g *grpc.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			g.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// h2c is a server's protocols: HTTP/1 and cleartext HTTP/2.
func h2c() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}
