import Tensors
print(BLASKernel.coreName, BLASKernel.sgemmMatchesReference())
