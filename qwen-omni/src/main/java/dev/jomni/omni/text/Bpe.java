package dev.jomni.omni.text;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Byte-level BPE over token ids: a pre-tokenized piece becomes its UTF-8 bytes' ids, then adjacent
 * pairs are merged lowest rank first, ties to the leftmost, exactly as Hugging Face tokenizers'
 * {@code Word::merge_all} does (a heap of (rank, position) with stale entries skipped), so that
 * pieces where several merge orders are possible come out the same.
 */
final class Bpe {
    /** Pieces longer than this are not cached: they are rare and would crowd out the common ones. */
    private static final int CACHE_MAX_PIECE_CHARS = 64;
    private static final int CACHE_MAX_ENTRIES = 200_000;

    private final int[] byteToId = new int[256];
    private final PairMap merges;
    private final int[] mergeNewId;        // by rank: the id the merged pair becomes
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    /**
     * @param byteIds   the id of each byte's byte-level character, by byte value
     * @param mergeLeft  left id of the merge of each rank
     * @param mergeRight right id of the merge of each rank
     * @param mergeNewId id of the merged token of each rank
     */
    Bpe(int[] byteIds, int[] mergeLeft, int[] mergeRight, int[] mergeNewId) {
        System.arraycopy(byteIds, 0, byteToId, 0, 256);
        this.mergeNewId = mergeNewId;
        merges = new PairMap(mergeLeft.length);
        // The first occurrence of a pair keeps its rank, as in tokenizers (later duplicates are ignored).
        for (int rank = 0; rank < mergeLeft.length; rank++) merges.putIfAbsent(mergeLeft[rank], mergeRight[rank], rank);
    }

    /** The ids of one pre-tokenized piece (raw text, before the byte-level mapping). */
    int[] encode(String piece) {
        boolean cacheable = piece.length() <= CACHE_MAX_PIECE_CHARS;
        if (cacheable) {
            int[] hit = cache.get(piece);
            if (hit != null) return hit;
        }
        int[] ids = mergeAll(piece.getBytes(StandardCharsets.UTF_8));
        if (cacheable) {
            if (cache.size() >= CACHE_MAX_ENTRIES) cache.clear();
            cache.put(piece, ids);
        }
        return ids;
    }

    private int[] mergeAll(byte[] bytes) {
        int n = bytes.length;
        int[] c = new int[n], prev = new int[n], next = new int[n];
        boolean[] removed = new boolean[n];
        for (int i = 0; i < n; i++) {
            c[i] = byteToId[bytes[i] & 0xFF];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        if (n < 2) return c;
        var heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            int rank = merges.get(c[i], c[i + 1]);
            if (rank >= 0) heap.push(entry(rank, i));
        }
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int rank = (int) (top >>> 32), pos = (int) top;
            if (removed[pos] || next[pos] < 0) continue;
            int right = next[pos];
            // A stale entry: the pair at pos changed since it was queued. tokenizers compares the new
            // ids, not the ranks, so a different pair that merges into the same token still counts.
            int current = merges.get(c[pos], c[right]);
            if (current < 0 || mergeNewId[current] != mergeNewId[rank]) continue;
            c[pos] = mergeNewId[rank];
            removed[right] = true;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            if (prev[pos] >= 0) {
                int r = merges.get(c[prev[pos]], c[pos]);
                if (r >= 0) heap.push(entry(r, prev[pos]));
            }
            if (next[pos] >= 0) {
                int r = merges.get(c[pos], c[next[pos]]);
                if (r >= 0) heap.push(entry(r, pos));
            }
        }
        int count = 0;
        for (int i = 0; i < n; i++) if (!removed[i]) c[count++] = c[i];
        return Arrays.copyOf(c, count);
    }

    /** Heap order is rank, then position: the order of tokenizers' {@code Merge}. */
    private static long entry(int rank, int pos) {
        return ((long) rank << 32) | pos;
    }

    /** Open-addressing map from an id pair to its merge rank; -1 when absent. */
    private static final class PairMap {
        private final long[] keys;
        private final int[] ranks;
        private final int mask;

        PairMap(int expected) {
            int capacity = Integer.highestOneBit(Math.max(4, expected * 2 - 1)) << 1;
            keys = new long[capacity];
            ranks = new int[capacity];
            Arrays.fill(keys, -1L);
            mask = capacity - 1;
        }

        void putIfAbsent(int left, int right, int rank) {
            long key = ((long) left << 32) | (right & 0xFFFFFFFFL);
            int i = slot(key);
            while (keys[i] != -1L) {
                if (keys[i] == key) return;
                i = (i + 1) & mask;
            }
            keys[i] = key;
            ranks[i] = rank;
        }

        int get(int left, int right) {
            long key = ((long) left << 32) | (right & 0xFFFFFFFFL);
            for (int i = slot(key); keys[i] != -1L; i = (i + 1) & mask) {
                if (keys[i] == key) return ranks[i];
            }
            return -1;
        }

        private int slot(long key) {
            long h = key * 0x9E3779B97F4A7C15L;
            return (int) (h >>> 40) & mask;
        }
    }

    /** A binary min-heap of longs, grown on demand. */
    private static final class LongHeap {
        private long[] a;
        private int size;

        LongHeap(int capacity) {
            a = new long[Math.max(4, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(long v) {
            if (size == a.length) a = Arrays.copyOf(a, size * 2);
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (a[parent] <= v) break;
                a[i] = a[parent];
                i = parent;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long last = a[--size];
            int i = 0;
            while (true) {
                int child = 2 * i + 1;
                if (child >= size) break;
                if (child + 1 < size && a[child + 1] < a[child]) child++;
                if (a[child] >= last) break;
                a[i] = a[child];
                i = child;
            }
            a[i] = last;
            return top;
        }
    }
}
