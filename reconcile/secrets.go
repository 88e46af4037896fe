package reconcile

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SecretKey reads one key of a Secret (a check's credentials, from its
// release's namespace).
func (m *Manager) SecretKey(ctx context.Context, namespace, name, key string) ([]byte, error) {
	var s corev1.Secret
	if err := m.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, err
	}
	v, ok := s.Data[key]
	if !ok {
		return nil, fmt.Errorf("no key %q", key)
	}
	return v, nil
}
