package dev.jomni.cuda;

/** Device memory as the driver sees it (cuMemGetInfo): free and total bytes of the whole GPU. */
public record MemoryInfo(long freeBytes, long totalBytes) {}
