#!/usr/bin/env bash
# gen-source.sh DIR N: a repository with one release whose kustomization
# renders N objects (N/2 Deployments and N/2 Services), for benchmarks.
set -euo pipefail
dir=$1; n=${2:-1000}; half=$((n / 2))
rel=$dir/releases/bench/app
mkdir -p "$rel"
cat > "$rel/release.yaml" <<YAML
apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: app, namespace: bench}
spec:
  workload: {kind: Deployment, name: app-0}
  strategy:
    rolling: {maxSurge: 1, maxUnavailable: 0}
YAML
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "namespace: bench"
  echo "labels: [{pairs: {team: bench}}]"
  echo "resources: [objects.yaml]"
} > "$rel/kustomization.yaml"
for ((i = 0; i < half; i++)); do
  cat <<YAML
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-$i}
spec:
  replicas: 2
  selector: {matchLabels: {app: app-$i}}
  template:
    metadata: {labels: {app: app-$i}}
    spec:
      containers:
      - name: app
        image: registry.local/app:$i
        ports: [{containerPort: 8080}]
        env: [{name: INDEX, value: "$i"}]
---
apiVersion: v1
kind: Service
metadata: {name: app-$i}
spec:
  selector: {app: app-$i}
  ports: [{port: 80, targetPort: 8080}]
YAML
done > "$rel/objects.yaml"
