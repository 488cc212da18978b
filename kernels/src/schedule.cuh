#pragma once
// Segment schedules: the grouped rows of every segment (a (head, expert) pair, or an EP expert)
// cut into work items of at most `tile_rows` rows, built on the device from the offsets, so no
// host synchronisation is needed. Kernels are launched with the bound on the number of items
// (kernel_limits.h) and blocks past the actual count return at once.
//
// A segment cut into several items gets one partial-sum slot per item (consecutive, in row
// order); reduce_slots_kernel adds them in slot order, so sums over a segment are deterministic.

#include <initializer_list>

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
  int* counters = nullptr;    // [0]: work items (from the front), [1]: partial-sum slots, [2]: split segments,
                              // [3]: heavy work items (from the back; heavy_first only), [4]: a work
                              // counter for kernels that hand out items dynamically (zero after the build)
  WorkItem* items = nullptr;  // [max_items], in no particular order across segments (item_at)
  int2* slots = nullptr;      // [segments]: (first slot, number of slots) of each segment
  int* split = nullptr;       // [max_split]: the segments cut into several items
  long long max_items = 0;
  long long max_slots = 0;
  long long max_split = 0;
  int segments = 0;
  int tile_rows = 0;
};

// Carves a schedule out of workspace (layout in kernel_limits.h); advances `cursor`.
inline Schedule carve_schedule(char*& cursor, long long rows, long long segments, long long tile_rows) {
  Schedule s;
  s.max_items = limits::schedule_max_items(rows, segments, tile_rows);
  s.max_slots = limits::schedule_max_slots(rows, tile_rows);
  s.max_split = limits::schedule_max_split(rows, segments, tile_rows);
  s.segments = static_cast<int>(segments);
  s.tile_rows = static_cast<int>(tile_rows);
  s.counters = reinterpret_cast<int*>(cursor);
  cursor += limits::kAlign;
  s.items = reinterpret_cast<WorkItem*>(cursor);
  cursor += limits::round_up(s.max_items * 16, limits::kAlign);
  s.slots = reinterpret_cast<int2*>(cursor);
  cursor += limits::round_up(segments * 8, limits::kAlign);
  s.split = reinterpret_cast<int*>(cursor);
  cursor += limits::round_up(s.max_split * 4, limits::kAlign);
  return s;
}

struct ScheduleBuild {
  Schedule sched;
  bool item_for_empty = false;  // an empty segment still gets one (empty) item
  bool heavy_first = false;     // item_at() gives the items of segments longer than tile_rows / 8 first
};

inline constexpr int kScheduleCounters = 5;

// Item i < item_count() of a schedule, where heavy = counters[3]: with heavy_first the heavy
// items are stored from the back of the array and come first; the others keep their order.
__device__ __forceinline__ int item_count(const Schedule& s) { return s.counters[0] + s.counters[3]; }
__device__ __forceinline__ WorkItem item_at(const Schedule& s, int heavy, int i) {
  return i < heavy ? s.items[s.max_items - 1 - i] : s.items[i - heavy];
}

namespace {

constexpr int kBuildThreads = 256;

// One thread per segment; each warp reserves its segments' items, slots and split entries with
// one atomic add each, so the items of a segment are consecutive. The order of segments in the
// lists depends on scheduling, but every item's work, and every segment's slot order, does not.
// blockIdx.y picks the schedule (launches build one or two from the same offsets).
__global__ void __launch_bounds__(kBuildThreads) build_schedule_kernel(const int* __restrict__ offsets,
                                                                       ScheduleBuild first, ScheduleBuild second) {
  griddep_launch_dependents();  // the kernel after may start; it waits for this one before reading
  const bool is_first = blockIdx.y == 0;
  const Schedule sched = is_first ? first.sched : second.sched;
  const bool item_for_empty = is_first ? first.item_for_empty : second.item_for_empty;
  const bool heavy_first = is_first ? first.heavy_first : second.heavy_first;
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % 32;
  const int T = sched.tile_rows;
  int off = 0, off_next = 0;
  if (s < sched.segments) {
    off = offsets[s];
    off_next = offsets[s + 1];
  }
  int n = (off_next - off + T - 1) / T;
  if (s < sched.segments && n == 0 && item_for_empty) n = 1;
  const int ns = n > 1 ? n : 0, nsplit = n > 1 ? 1 : 0;
  const bool back = heavy_first && off_next - off > T / 8;
  const int n_front = back ? 0 : n, n_back = back ? n : 0;
  int incl_n = n_front, incl_b = n_back, incl_s = ns, incl_p = nsplit;
#pragma unroll
  for (int o = 1; o < 32; o *= 2) {
    const int a = __shfl_up_sync(0xffffffffu, incl_n, o);
    const int d = __shfl_up_sync(0xffffffffu, incl_b, o);
    const int b = __shfl_up_sync(0xffffffffu, incl_s, o);
    const int c = __shfl_up_sync(0xffffffffu, incl_p, o);
    if (lane >= o) {
      incl_n += a;
      incl_b += d;
      incl_s += b;
      incl_p += c;
    }
  }
  int base_n = 0, base_b = 0, base_s = 0, base_p = 0;
  if (lane == 31) {
    if (incl_n != 0) base_n = atomicAdd(&sched.counters[0], incl_n);
    if (incl_b != 0) base_b = atomicAdd(&sched.counters[3], incl_b);
    if (incl_s != 0) base_s = atomicAdd(&sched.counters[1], incl_s);
    if (incl_p != 0) base_p = atomicAdd(&sched.counters[2], incl_p);
  }
  base_n = __shfl_sync(0xffffffffu, base_n, 31) + incl_n - n_front;
  base_b = __shfl_sync(0xffffffffu, base_b, 31) + incl_b - n_back;
  base_s = __shfl_sync(0xffffffffu, base_s, 31) + incl_s - ns;
  base_p = __shfl_sync(0xffffffffu, base_p, 31) + incl_p - nsplit;
  if (s < sched.segments) {
    HPSIM_DEVICE_ASSERT(base_n + n_front <= sched.max_items && base_b + n_back <= sched.max_items &&
                        base_s + ns <= sched.max_slots && base_p + nsplit <= sched.max_split);
    sched.slots[s] = make_int2(base_s, ns);
    if (nsplit != 0) sched.split[base_p] = s;
  }
  // The warp writes its segments' items together (a hot segment has hundreds, which one thread
  // would write one after the other): item t of the warp belongs to the first lane whose
  // inclusive item count exceeds t (each lane's items are all front or all back).
  const int incl = incl_n + incl_b;
  const int warp_items = __shfl_sync(0xffffffffu, incl, 31);
  const int own_first = back ? base_b : base_n;  // this lane's first item, counted from its end of the array
  for (int j = 0; j < warp_items; j += 32) {
    const int t = j + lane;
    int o = 0;
#pragma unroll
    for (int step = 16; step > 0; step >>= 1) {
      if (__shfl_sync(0xffffffffu, incl, o + step - 1) <= t) o += step;
    }
    const int n_o = __shfl_sync(0xffffffffu, n, o);
    const int i = t - (__shfl_sync(0xffffffffu, incl, o) - n_o);
    const int off_o = __shfl_sync(0xffffffffu, off, o), off_next_o = __shfl_sync(0xffffffffu, off_next, o);
    const int s_o = __shfl_sync(0xffffffffu, s, o), base_s_o = __shfl_sync(0xffffffffu, base_s, o);
    const int first_o = __shfl_sync(0xffffffffu, own_first, o);
    const bool back_o = __shfl_sync(0xffffffffu, back ? 1 : 0, o) != 0;
    if (t < warp_items) {
      WorkItem w;
      w.segment = s_o;
      w.row_begin = min(off_o + i * T, off_next_o);
      w.row_end = min(off_o + (i + 1) * T, off_next_o);
      w.slot = n_o > 1 ? base_s_o + i : -1;
      // Front and back never meet: together they hold at most max_items items.
      sched.items[back_o ? sched.max_items - 1 - (first_o + i) : first_o + i] = w;
    }
  }
}

// For the segments cut into several items: store(s, i, sum over the segment's slots of
// partial[slot][i]) for i < elems (elems a multiple of 4: 16-byte loads of four elements).
// A unit of work is one split segment x 256 / kLanes quads; its threads are kLanes lanes of one
// quad each, lane j adding slots j, j + kLanes, ... (kReduceBatch loads in flight), and lane 0
// then adding the lanes' sums in lane order: a fixed order whatever the grid, so the sums are
// deterministic. Wide outputs (the expert MLPs' gradients) take one lane, so each of many units
// keeps its loads in flight without a barrier; narrow ones (a router's row of h or d) take
// several, so a hot expert's long list of slots is read by many threads at once. Blocks walk the
// units (their count is known on the device only). Launched by reduce_slots().
constexpr int kReduceThreads = 256;
constexpr int kReduceBatch = 8;
template <int kLanes, typename Store>
__global__ void __launch_bounds__(kReduceThreads)
    reduce_slots_kernel(const float* __restrict__ partial, Schedule sched, long long elems, Store store) {
  constexpr int kQuads = kReduceThreads / kLanes;
  __shared__ float4 lane_sums[kLanes > 1 ? kLanes - 1 : 1][kQuads];
  const long long quads = elems / 4, groups = (quads + kQuads - 1) / kQuads;
  const long long units = static_cast<long long>(sched.counters[2]) * groups;
  const int t = static_cast<int>(threadIdx.x) % kQuads, lane = static_cast<int>(threadIdx.x) / kQuads;
  for (long long u = blockIdx.x; u < units; u += gridDim.x) {
    const int s = sched.split[u / groups];
    const long long q = (u % groups) * kQuads + t;
    const int last = sched.slots[s].x + sched.slots[s].y;
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (q < quads) {
      for (int slot = sched.slots[s].x + lane; slot < last; slot += kReduceBatch * kLanes) {
        float4 v[kReduceBatch];
#pragma unroll
        for (int j = 0; j < kReduceBatch; ++j) {
          const int sl = slot + j * kLanes;
          v[j] = sl < last ? reinterpret_cast<const float4*>(partial + sl * elems)[q] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
#pragma unroll
        for (int j = 0; j < kReduceBatch; ++j) {
          acc.x += v[j].x;
          acc.y += v[j].y;
          acc.z += v[j].z;
          acc.w += v[j].w;
        }
      }
    }
    if constexpr (kLanes > 1) {
      if (lane > 0) lane_sums[lane - 1][t] = acc;
      __syncthreads();
      if (lane == 0) {
#pragma unroll
        for (int j = 0; j < kLanes - 1; ++j) {
          const float4 v = lane_sums[j][t];
          acc.x += v.x;
          acc.y += v.y;
          acc.z += v.z;
          acc.w += v.w;
        }
      }
    }
    if (lane == 0 && q < quads) {
      store(s, 4 * q + 0, acc.x);
      store(s, 4 * q + 1, acc.y);
      store(s, 4 * q + 2, acc.z);
      store(s, 4 * q + 3, acc.w);
    }
    if constexpr (kLanes > 1) __syncthreads();
  }
}

}  // namespace

// The store of the weight-gradient paths: a slot holds two per-segment outputs of `half`
// elements each, one after the other, written as bf16 to first[s][i] and second[s][i].
struct StoreBf16Pair {
  __nv_bfloat16* first;
  __nv_bfloat16* second;
  long long half;
  __device__ void operator()(int s, long long i, float v) const {
    if (i < half)
      first[s * half + i] = __float2bfloat16_rn(v);
    else
      second[s * half + i - half] = __float2bfloat16_rn(v);
  }
};

// Eight lanes per quad for outputs of at most 32 quads (a router's weight rows), else one;
// enough blocks for every unit of the split segments the schedule can hold, at most eight per SM.
template <typename Store>
cudaError_t reduce_slots(const float* partial, const Schedule& sched, long long elems, Store store, cudaStream_t stream) {
  if (elems % 4 != 0) return cudaErrorInvalidValue;
  const bool narrow = elems / 4 <= kReduceThreads / 8;
  const long long quads_per_unit = narrow ? kReduceThreads / 8 : kReduceThreads;
  long long blocks = (sched.max_split > 0 ? sched.max_split : 1) * ((elems / 4 + quads_per_unit - 1) / quads_per_unit);
  blocks = blocks < 8 * limits::kSms ? blocks : 8 * limits::kSms;
  if (narrow)
    reduce_slots_kernel<8><<<static_cast<unsigned>(blocks), kReduceThreads, 0, stream>>>(partial, sched, elems, store);
  else
    reduce_slots_kernel<1><<<static_cast<unsigned>(blocks), kReduceThreads, 0, stream>>>(partial, sched, elems, store);
  return cudaGetLastError();
}

// Builds one or two schedules from the same offsets (the counters zeroed, then one launch).
inline cudaError_t build_schedules(const int* offsets, const ScheduleBuild& first, const ScheduleBuild* second,
                                   cudaStream_t stream) {
  for (const ScheduleBuild* b : {&first, second}) {
    if (b == nullptr) continue;
    const cudaError_t zero = cudaMemsetAsync(b->sched.counters, 0, kScheduleCounters * sizeof(int), stream);
    if (zero != cudaSuccess) return zero;
  }
  const int segments = second != nullptr && second->sched.segments > first.sched.segments ? second->sched.segments : first.sched.segments;
  if (segments == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>((segments + kBuildThreads - 1) / kBuildThreads), second != nullptr ? 2u : 1u);
  build_schedule_kernel<<<grid, kBuildThreads, 0, stream>>>(offsets, first, second != nullptr ? *second : first);
  return cudaGetLastError();
}
inline cudaError_t build_schedule(const int* offsets, const Schedule& sched, bool item_for_empty, cudaStream_t stream) {
  return build_schedules(offsets, ScheduleBuild{sched, item_for_empty}, nullptr, stream);
}

}  // namespace hpsim::kernels::device
