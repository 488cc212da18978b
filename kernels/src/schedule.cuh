#pragma once
// Segment schedules: the grouped rows of every segment (a (head, expert) pair, or an EP expert)
// cut into work items of at most `tile_rows` rows, built on the device from the offsets, so no
// host synchronisation is needed. Kernels are launched with the bound on the number of items
// (kernel_limits.h) and blocks past the actual count return at once.
//
// A segment cut into several items gets one partial-sum slot per item (consecutive, in row
// order); reduce_slots() adds them in slot order, so sums over a segment are deterministic.

#include "device_common.cuh"
#include "kernel_limits.h"

namespace hpsim::kernels::device {

struct WorkItem {
  int segment;
  int row_begin;
  int row_end;
  int slot;  // -1: the item is the whole segment; else its partial-sum slot
};

struct Schedule {
  int* counters = nullptr;    // [0]: work items, [1]: partial-sum slots (zeroed before the build)
  WorkItem* items = nullptr;  // [max_items], in no particular order across segments
  int2* slots = nullptr;      // [segments]: (first slot, number of slots) of each segment
  long long max_items = 0;
  long long max_slots = 0;
  int segments = 0;
  int tile_rows = 0;
};

// Carves a schedule out of workspace (layout in kernel_limits.h); advances `cursor`.
inline Schedule carve_schedule(char*& cursor, long long rows, long long segments, long long tile_rows) {
  Schedule s;
  s.max_items = limits::schedule_max_items(rows, segments, tile_rows);
  s.max_slots = limits::schedule_max_slots(rows, tile_rows);
  s.segments = static_cast<int>(segments);
  s.tile_rows = static_cast<int>(tile_rows);
  s.counters = reinterpret_cast<int*>(cursor);
  cursor += limits::kAlign;
  s.items = reinterpret_cast<WorkItem*>(cursor);
  cursor += limits::round_up(s.max_items * 16, limits::kAlign);
  s.slots = reinterpret_cast<int2*>(cursor);
  cursor += limits::round_up(segments * 8, limits::kAlign);
  return s;
}

namespace {

// One thread per segment; each warp reserves its segments' items and slots with one atomic add
// each, so the items of a segment are consecutive. The order of segments in the item list
// depends on scheduling, but every item's work, and every segment's slot order, does not.
__global__ void __launch_bounds__(256) build_schedule_kernel(const int* __restrict__ offsets,
                                                             Schedule sched,
                                                             bool item_for_empty) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % 32;
  const int T = sched.tile_rows;
  int off = 0, off_next = 0;
  if (s < sched.segments) {
    off = offsets[s];
    off_next = offsets[s + 1];
  }
  const int c = off_next - off;
  int n = (c + T - 1) / T;
  if (s < sched.segments && n == 0 && item_for_empty) n = 1;
  const int ns = n > 1 ? n : 0;
  int incl_n = n, incl_s = ns;
#pragma unroll
  for (int o = 1; o < 32; o *= 2) {
    const int a = __shfl_up_sync(0xffffffffu, incl_n, o);
    const int b = __shfl_up_sync(0xffffffffu, incl_s, o);
    if (lane >= o) {
      incl_n += a;
      incl_s += b;
    }
  }
  int base_n = 0, base_s = 0;
  if (lane == 31) {
    base_n = atomicAdd(&sched.counters[0], incl_n);
    base_s = atomicAdd(&sched.counters[1], incl_s);
  }
  base_n = __shfl_sync(0xffffffffu, base_n, 31) + incl_n - n;
  base_s = __shfl_sync(0xffffffffu, base_s, 31) + incl_s - ns;
  if (s >= sched.segments) return;
  HPSIM_DEVICE_ASSERT(base_n + n <= sched.max_items && base_s + ns <= sched.max_slots);
  sched.slots[s] = make_int2(base_s, ns);
  for (int i = 0; i < n; ++i) {
    WorkItem w;
    w.segment = s;
    w.row_begin = min(off + i * T, off_next);
    w.row_end = min(off + (i + 1) * T, off_next);
    w.slot = n > 1 ? base_s + i : -1;
    sched.items[base_n + i] = w;
  }
}

// For segments cut into several items: store(s, i, sum over the segment's slots, in slot order,
// of partial[slot][i]) for i < elems; other segments are left alone.
template <typename Store>
__global__ void reduce_slots_kernel(const float* __restrict__ partial,
                                    const int2* __restrict__ slots,
                                    long long elems,
                                    Store store) {
  const int s = blockIdx.x;
  const int first = slots[s].x, last = slots[s].x + slots[s].y;
  if (first == last) return;
  for (long long i = static_cast<long long>(blockIdx.y) * blockDim.x + threadIdx.x; i < elems;
       i += static_cast<long long>(gridDim.y) * blockDim.x) {
    float acc = 0.0f;
    for (int slot = first; slot < last; ++slot) acc += partial[slot * elems + i];
    store(s, i, acc);
  }
}

}  // namespace

inline cudaError_t build_schedule(const int* offsets, const Schedule& sched, bool item_for_empty, cudaStream_t stream) {
  const cudaError_t zero = cudaMemsetAsync(sched.counters, 0, 2 * sizeof(int), stream);
  if (zero != cudaSuccess) return zero;
  if (sched.segments == 0) return cudaSuccess;
  build_schedule_kernel<<<static_cast<unsigned>((sched.segments + 255) / 256), 256, 0, stream>>>(offsets, sched, item_for_empty);
  return cudaGetLastError();
}

}  // namespace hpsim::kernels::device
