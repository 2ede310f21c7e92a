"""Library names several tasks must not use (each test file lists its own in FORBIDDEN).

An entry forbids itself and everything below it: "minidense.ops.pooling" covers
"minidense.ops.pooling.AvgPool2d". The test process also forbids "exercises.solutions".
A task that forbids an op forbids its fast kernels in minidense/kernels/ too (kernels/cuda.py holds
the GPU kernels of convolution, batch norm and SGD).
"""
IM2COL = ["minidense.ops.conv", "minidense.ops.windows.kernel_offsets", "minidense.ops.windows.pad2d",
          "minidense.ops.windows.unpad2d", "minidense.kernels.conv", "minidense.kernels.cuda"]

CONV2D = ["minidense.ops.conv.conv2d", "minidense.ops.conv.conv2d_forward_im2col",
          "minidense.ops.conv.conv2d_backward_im2col", "minidense.ops.conv.Conv2d",
          "minidense.ops.conv.conv2d_naive", "minidense.ops.conv.Conv2dNaive",
          "minidense.kernels.conv", "minidense.kernels.cuda", "minidense.nn.functional.conv2d",
          "minidense.nn.Conv2d", "minidense.nn.layers.Conv2d"]

BATCH_NORM = ["minidense.ops.normalization", "minidense.kernels.normalization", "minidense.kernels.cuda",
              "minidense.nn.functional.batch_norm", "minidense.nn.functional.batch_norm_relu",
              "minidense.nn.BatchNorm2d", "minidense.nn.layers.BatchNorm2d"]

POOLING = ["minidense.ops.pooling", "minidense.kernels.pooling", "minidense.nn.functional.avg_pool2d",
           "minidense.nn.functional.max_pool2d", "minidense.nn.AvgPool2d", "minidense.nn.MaxPool2d",
           "minidense.nn.layers.AvgPool2d", "minidense.nn.layers.MaxPool2d"]

SOFTMAX_CROSS_ENTROPY = ["minidense.ops.loss", "minidense.ops.activation.softmax",
                         "minidense.ops.activation.Softmax", "minidense.ops.activation.log_softmax",
                         "minidense.ops.activation.LogSoftmax",
                         "minidense.nn.functional.cross_entropy", "minidense.nn.functional.nll_loss",
                         "minidense.nn.functional.softmax", "minidense.nn.functional.log_softmax"]

CONCAT = ["minidense.ops.concat.Cat", "minidense.ops.concat.cat", "minidense.ops.concat.Split",
          "minidense.ops.concat.split", "minidense.ops.concat.concatenate",
          "minidense.kernels.concat", "minidense.ops.cat", "minidense.ops.split", "minidense.cat",
          "minidense.concatenate", "minidense.split"]

DENSENET = ["minidense.models"]
OPTIMIZERS = ["minidense.optim", "minidense.kernels.cuda"]
FEATURE_REUSE = ["minidense.analysis"]
