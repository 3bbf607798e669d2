package dev.jomni.cuda;

/** Element types of the GPU libraries (cuBLASLt's cudaDataType_t, NCCL's ncclDataType_t). */
public enum DataType {
    F32(4, 0, 7),
    F16(2, 2, 6),
    BF16(2, 14, 9);

    private final int bytes;
    final int cudaDataType;
    final int ncclDataType;

    DataType(int bytes, int cudaDataType, int ncclDataType) {
        this.bytes = bytes;
        this.cudaDataType = cudaDataType;
        this.ncclDataType = ncclDataType;
    }

    public int bytes() {
        return bytes;
    }
}
