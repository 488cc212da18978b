#pragma once
// Segment schedules: the grouped rows of every segment (a (head, expert) pair, or an EP expert)
// cut into work items of at most `tile_rows` rows, built on the device from the offsets, so no
// host synchronisation is needed. Kernels are launched with the bound on the number of items
// (kernel_limits.h) and blocks past the actual count return at once.
//
// A segment cut into several items gets one partial-sum slot per item (consecutive, in row
// order); reduce_slots() adds them in slot order, so sums over a segment are deterministic.

#include <cub/block/block_scan.cuh>

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
  int* num_items = nullptr;
  WorkItem* items = nullptr;
  int* slot_begin = nullptr;  // [segments + 1]
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
  s.num_items = reinterpret_cast<int*>(cursor);
  cursor += limits::kAlign;
  s.items = reinterpret_cast<WorkItem*>(cursor);
  cursor += limits::round_up(s.max_items * 16, limits::kAlign);
  s.slot_begin = reinterpret_cast<int*>(cursor);
  cursor += limits::round_up((segments + 1) * 4, limits::kAlign);
  return s;
}

namespace {

constexpr int kScheduleThreads = 1024;

__global__ void __launch_bounds__(kScheduleThreads) build_schedule_kernel(const int* __restrict__ offsets,
                                                                          Schedule sched,
                                                                          bool item_for_empty) {
  using Scan = cub::BlockScan<int, kScheduleThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  const int S = sched.segments;
  const int T = sched.tile_rows;
  const int per_thread = (S + kScheduleThreads - 1) / kScheduleThreads;
  const int s_begin = min(S, static_cast<int>(threadIdx.x) * per_thread);
  const int s_end = min(S, s_begin + per_thread);
  int my_items = 0, my_slots = 0;
  for (int s = s_begin; s < s_end; ++s) {
    const int c = offsets[s + 1] - offsets[s];
    int n = (c + T - 1) / T;
    if (n == 0 && item_for_empty) n = 1;
    my_items += n;
    my_slots += n > 1 ? n : 0;
  }
  int item_base = 0, slot_base = 0, total_items = 0, total_slots = 0;
  Scan(scan_storage).ExclusiveSum(my_items, item_base, total_items);
  __syncthreads();
  Scan(scan_storage).ExclusiveSum(my_slots, slot_base, total_slots);
  for (int s = s_begin; s < s_end; ++s) {
    const int off = offsets[s], off_next = offsets[s + 1];
    const int c = off_next - off;
    int n = (c + T - 1) / T;
    if (n == 0 && item_for_empty) n = 1;
    sched.slot_begin[s] = slot_base;
    for (int i = 0; i < n; ++i) {
      WorkItem w;
      w.segment = s;
      w.row_begin = min(off + i * T, off_next);
      w.row_end = min(off + (i + 1) * T, off_next);
      w.slot = n > 1 ? slot_base + i : -1;
      sched.items[item_base + i] = w;
    }
    item_base += n;
    slot_base += n > 1 ? n : 0;
  }
  if (threadIdx.x == kScheduleThreads - 1) {
    *sched.num_items = total_items;
    sched.slot_begin[S] = total_slots;
  }
  HPSIM_DEVICE_ASSERT(total_items <= sched.max_items && total_slots <= sched.max_slots);
}

// For segments cut into several items: store(s, i, sum over the segment's slots, in slot order,
// of partial[slot][i]) for i < elems; other segments are left alone.
template <typename Store>
__global__ void reduce_slots_kernel(const float* __restrict__ partial,
                                    const int* __restrict__ slot_begin,
                                    long long elems,
                                    Store store) {
  const int s = blockIdx.x;
  const int first = slot_begin[s], last = slot_begin[s + 1];
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
  build_schedule_kernel<<<1, kScheduleThreads, 0, stream>>>(offsets, sched, item_for_empty);
  return cudaGetLastError();
}

}  // namespace hpsim::kernels::device
