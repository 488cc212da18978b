#pragma once
// Whether the current device runs the sm_90a (wgmma) kernels: compute capability 9.0. Defined in
// expert_mlp_fwd_sm90a.cu. Private.

namespace hpsim::kernels::device {

bool wgmma_supported();

}  // namespace hpsim::kernels::device
