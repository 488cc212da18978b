# NCCL collective tests (included from tests/kernels/CMakeLists.txt when HPSIM_HAVE_NCCL).
# Labelled gpu (W = every visible GPU, one is enough) and multigpu (the two-GPU cases).
hpsim_add_test(hpsim_comm_gpu_tests SOURCES comm_gpu_test.cpp LIBS hpsim::comm CUDA::cudart LABELS "gpu;multigpu")
