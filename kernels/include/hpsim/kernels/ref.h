#pragma once
// CPU reference twins of every kernel family: the same argument structs as the launchers, with
// host pointers. Plain C++ (no CUDA), arithmetic in float64, results rounded once to the output
// type; tests and hpsim-bench compare the GPU kernels against them. Symbols as in DESIGN.md
// section 2.
//
// check_shape() holds the rules of the maths (sizes, pointers); every shape that passes it runs on
// the twin. The GPU launchers' can_implement() adds the kernels' own limits (tile multiples,
// maximum k, ...) on top.

#include "hpsim/core/error.h"
#include "hpsim/kernels/combine.h"
#include "hpsim/kernels/dense.h"
#include "hpsim/kernels/ep_permute.h"
#include "hpsim/kernels/expert_mlp.h"
#include "hpsim/kernels/grouped_mlp.h"
#include "hpsim/kernels/grouping.h"
#include "hpsim/kernels/router.h"

namespace hpsim::kernels {

core::Status check_shape(const RouterForwardArgs& args);
core::Status check_shape(const RouterBackwardArgs& args);
core::Status check_shape(const GroupingArgs& args);
core::Status check_shape(const ExpertMlpForwardArgs& args);
core::Status check_shape(const ExpertMlpBackwardArgs& args);
core::Status check_shape(const CombineForwardArgs& args);
core::Status check_shape(const CombineBackwardArgs& args);
core::Status check_shape(const PermuteArgs& args);
core::Status check_shape(const RegroupArgs& args);
core::Status check_shape(const GroupedMlpForwardArgs& args);
core::Status check_shape(const GroupedMlpBackwardArgs& args);
core::Status check_shape(const DenseForwardArgs& args);
core::Status check_shape(const DenseBackwardArgs& args);

namespace ref {

// GELU in its tanh form and its derivative (expert_mlp.h).
double gelu(double s);
double gelu_grad(double s);

core::Status run(const RouterForwardArgs& args);
core::Status run(const RouterBackwardArgs& args);   // reads topk_expert, not the grouping
core::Status run(const GroupingArgs& args);
core::Status run(const ExpertMlpForwardArgs& args);
core::Status run(const ExpertMlpBackwardArgs& args);
core::Status run(const CombineForwardArgs& args);
core::Status run(const CombineBackwardArgs& args);
core::Status run(const PermuteArgs& args);
core::Status run(const RegroupArgs& args);   // also checks rows against the sum of counts
core::Status run(const GroupedMlpForwardArgs& args); // y is computed from the stored (bf16) act, as on the GPU
core::Status run(const GroupedMlpBackwardArgs& args);
core::Status run(const DenseForwardArgs& args);     // context is not used
core::Status run(const DenseBackwardArgs& args);

}  // namespace ref
}  // namespace hpsim::kernels
