"""Names shared by every layer: the API group, our field manager, label and annotation keys."""

GROUP = "aifactory.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Server-side apply field manager; every object we write is owned by it.
FIELD_MANAGER = "aifactory-operator"
FINALIZER = f"{GROUP}/finalizer"

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "aifactory-operator"
LABEL_FACTORY = f"{GROUP}/factory"
LABEL_POOL = f"{GROUP}/pool"
LABEL_NVLINK_DOMAIN = f"{GROUP}/nvlink-domain"
LABEL_RACK = f"{GROUP}/rack"
# A kubelet may set its own topology.kubernetes.io/region, so jurisdiction is read from a key under
# node-restriction.kubernetes.io/, which the NodeRestriction admission plugin forbids kubelets to set.
LABEL_JURISDICTION = "node-restriction.kubernetes.io/aifactory.dev-jurisdiction"
LABEL_REGION = "topology.kubernetes.io/region"
LABEL_ZONE = "topology.kubernetes.io/zone"
# The labels NVIDIA's GPU feature discovery puts on GPU nodes, so workloads written for the GPU
# Operator select our nodes unchanged.
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"
LABEL_GPU_COUNT = "nvidia.com/gpu.count"
GPU_RESOURCE = "nvidia.com/gpu"

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_VALUE = "fake"

LABEL_TENANT = f"{GROUP}/tenant"
LABEL_CLEARANCE = f"{GROUP}/clearance"
LABEL_DATASET = f"{GROUP}/dataset"
LABEL_DATASET_NAMESPACE = f"{GROUP}/dataset-namespace"
LABEL_DATA_JURISDICTION = f"{GROUP}/jurisdiction"
LABEL_CLASSIFICATION = f"{GROUP}/classification"
LABEL_STORAGE = f"{GROUP}/storage"
# Label values hold at most 63 characters, so the label carries a prefix of the sha256 for
# selection and the annotation carries the whole digest.
LABEL_DIGEST_PREFIX = f"{GROUP}/digest-prefix"
ANNOTATION_DIGEST = f"{GROUP}/digest"
# Set on namespaces the operator created (not adopted), the only ones it may ever delete.
ANNOTATION_CREATED = f"{GROUP}/created-by-operator"
# Set on objects kept after their spec entry went away, saying why.
ANNOTATION_RETAINED = f"{GROUP}/retained"
# A tenant namespace's lifecycle door: absent until the operator has proved its factory's admission
# policies in force there, "true" from then on, "false" once the factory is gone or let go of it.
# The lifecycle guard refuses tenant writes unless it is "true".
LABEL_ENFORCED = f"{GROUP}/enforced"
ENFORCED, LOCKED = "true", "false"
# Taints the operator added to an adopted (static) node, so that releasing it removes only those.
ANNOTATION_OWNED_TAINTS = f"{GROUP}/owned-taints"

TENANT_ADMIN_ROLE = "aifactory-tenant-admin"
POD_SECURITY_LEVEL = "restricted"

LABEL_TRAININGJOB = f"{GROUP}/trainingjob"
LABEL_ATTEMPT = f"{GROUP}/attempt"
# Annotations with this prefix on a TrainingJob are copied onto its pods: the simulated-training
# KWOK stages read them (duration, injected exit code).
SIMULATION_PREFIX = "sim.aifactory.dev/"
RENDEZVOUS_PORT = 29500
CHECKPOINT_MOUNT = "/checkpoints"

LABEL_MODELENDPOINT = f"{GROUP}/modelendpoint"
ANNOTATION_MODEL_DIGEST = f"{GROUP}/model-digest"
MODEL_MOUNT = "/models"

# The operator's own namespace: its webhook certificate and the audit log live here, and admission
# webhooks never apply to it, so the operator can always restart.
OPERATOR_NAMESPACE = "aifactory-system"
# The local control plane's first loopback port; the operator's default webhook port is ten above it.
DEFAULT_PORT_BASE = 16440
# ConfigMaps that hold the hash-chained audit log of policy refusals, one segment each.
LABEL_AUDIT_LOG = f"{GROUP}/audit-log"
AUDIT_SEGMENT_PREFIX = "aifactory-audit-"
# The log's head (entry count and last hash) recorded outside the segments, which only grows; not a
# segment name, as those end in six or more digits.
AUDIT_ANCHOR_NAME = "aifactory-audit-anchor"
