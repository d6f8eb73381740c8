# Sourced by the scripts that build Kubernetes commands: kube_ldflags VERSION prints the linker
# flags that stamp VERSION into a binary (what `kubectl version` and the API server report).
kube_ldflags() {
  local kube=$1 minor
  minor=${kube#v1.}; minor=${minor%%.*}
  echo "-s -w \
 -X k8s.io/component-base/version.gitVersion=${kube} \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=${minor} \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=${kube} \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
}
