/*
 * A stand-in for libnvidia-ml.so.1 that describes a fixed DGX A100: the answers of the
 * simulator's built-in dgx-a100 profile (nvlib/sim/profiles/dgx-a100.yaml, answered by
 * nvlib/sim/calls/), given through the C ABI that the production pynvml loads with
 * ctypes. It lets a machine without a GPU run and time the real NVML path, simulator
 * left out. nvml_stub.py beside it builds it; nothing built from it is committed.
 *
 * It exports the symbols a GFD oneshot calls, plus nvmlInit_v2 and nvmlErrorString.
 * Any other symbol is absent, so pynvml raises NVMLError_FunctionNotFound for it, as it
 * does on an older driver. Structure layouts are NVML's (pynvml's ctypes structures
 * mirror them). Like the simulator, every call but init and nvmlErrorString answers
 * NVML_ERROR_UNINITIALIZED until nvmlInit, and a bad handle is an invalid argument.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
};

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

struct gpu {
    const char *uuid;
    unsigned int bus; /* PCI bus number; domain, device and function are 0 */
};
typedef const struct gpu *nvmlDevice_t;

/* Index order is minor-number order, as in the profile. */
static const struct gpu GPUS[] = {
    {"GPU-417a307c-d141-572c-8b8d-8492a04ee548", 0x07},
    {"GPU-64934465-d236-5f75-af73-16e80da4fb38", 0x0f},
    {"GPU-e691b106-fb6d-5494-8729-d96fc600daa0", 0x47},
    {"GPU-2e2de39f-c6b5-5b88-83dd-572d8173e7b9", 0x4e},
    {"GPU-295c02cd-6df5-5bc1-9bc0-6f0fe1f601c9", 0x87},
    {"GPU-d662e654-4a36-5b6d-b02f-805bd26c8b55", 0x90},
    {"GPU-83da1d97-8bd0-5cbf-b0d7-24e304c7fd76", 0xb7},
    {"GPU-9d8fdb9c-5aa5-59d4-96bb-b8774096c1f2", 0xbd},
};
#define GPU_COUNT (sizeof GPUS / sizeof GPUS[0])

#define MIB (1024ULL * 1024ULL)
#define MEMORY_TOTAL (40960 * MIB)
/* The driver keeps min(total / 64, 1 GiB) of a GPU to itself: 640 MiB here. */
#define MEMORY_RESERVED (MEMORY_TOTAL / 64)

static int init_count;

/* The GPU behind a handle, or NULL: a handle is a pointer into GPUS. */
static const struct gpu *gpu_of(nvmlDevice_t handle)
{
    uintptr_t at = (uintptr_t)handle, first = (uintptr_t)GPUS;
    if (at < first || at >= (uintptr_t)(GPUS + GPU_COUNT) || (at - first) % sizeof *GPUS)
        return NULL;
    return handle;
}

/* Copy `text` and its NUL into a `size`-byte buffer, or say it is too small. */
static nvmlReturn_t put_text(char *buf, unsigned int size, const char *text)
{
    if (!buf)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) + 1 > size)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buf, text, strlen(text) + 1);
    return NVML_SUCCESS;
}

#define REQUIRE_INIT()                        \
    do {                                      \
        if (init_count == 0)                  \
            return NVML_ERROR_UNINITIALIZED;  \
    } while (0)

#define REQUIRE_GPU(handle)                       \
    REQUIRE_INIT();                               \
    const struct gpu *gpu = gpu_of(handle);       \
    if (!gpu)                                     \
        return NVML_ERROR_INVALID_ARGUMENT

EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    init_count++;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags;
    return nvmlInit_v2();
}

/* NVML counts inits: the last matching shutdown uninitialises. */
EXPORT nvmlReturn_t nvmlShutdown(void)
{
    REQUIRE_INIT();
    init_count--;
    return NVML_SUCCESS;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result)
{
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    default: return "Unknown Error";
    }
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    REQUIRE_INIT();
    return put_text(version, length, "550.54.15");
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version)
{
    REQUIRE_INIT();
    if (!version)
        return NVML_ERROR_INVALID_ARGUMENT;
    *version = 12040;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    REQUIRE_INIT();
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = GPU_COUNT;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    REQUIRE_INIT();
    if (index >= GPU_COUNT || !device)
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = &GPUS[index];
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    REQUIRE_GPU(device);
    return put_text(name, length, "NVIDIA A100-SXM4-40GB");
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    REQUIRE_GPU(device);
    return put_text(uuid, length, gpu->uuid);
}

EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor)
{
    REQUIRE_GPU(device);
    if (!minor)
        return NVML_ERROR_INVALID_ARGUMENT;
    *minor = (unsigned int)(gpu - GPUS);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    REQUIRE_GPU(device);
    if (!memory)
        return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = MEMORY_TOTAL;
    memory->used = MEMORY_RESERVED;
    memory->free = MEMORY_TOTAL - MEMORY_RESERVED;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major,
                                                       int *minor)
{
    REQUIRE_GPU(device);
    if (!major || !minor)
        return NVML_ERROR_INVALID_ARGUMENT;
    *major = 8;
    *minor = 0;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    REQUIRE_GPU(device);
    if (!pci)
        return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof *pci);
    pci->bus = gpu->bus;
    pci->pciDeviceId = 0x20B010DE;    /* A100-SXM4-40GB, NVIDIA's vendor id */
    pci->pciSubSystemId = 0x134F10DE;
    /* The legacy field has a 4-digit domain, the current one 8; hex digits upper case. */
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "0000:%02X:00.0", gpu->bus);
    snprintf(pci->busId, sizeof pci->busId, "00000000:%02X:00.0", gpu->bus);
    return NVML_SUCCESS;
}

/* MIG capable, MIG disabled: current and pending mode NVML_DEVICE_MIG_DISABLE (0). */
EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current,
                                         unsigned int *pending)
{
    REQUIRE_GPU(device);
    if (!current || !pending)
        return NVML_ERROR_INVALID_ARGUMENT;
    *current = *pending = 0;
    return NVML_SUCCESS;
}

/* No NVLink fabric on a DGX A100: not supported, whatever the structure's version (the
 * simulator answers so before it reads the structure). */
EXPORT nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t device, void *info)
{
    REQUIRE_GPU(device);
    (void)gpu;
    (void)info;
    return NVML_ERROR_NOT_SUPPORTED;
}
