package dev.jomni.tensor;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jomni.tensor.spi.Backend;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** Backend.checkIndex on the CPU: immediate, naming the op, the value and its position. */
class IndexCheckTest {
    private final Tensor x = Tensor.randn(new Generator(5), DType.F32, 3, 4);

    private static String error(Supplier<Tensor> op) {
        return assertThrows(IllegalArgumentException.class, op::get).getMessage();
    }

    @Test
    void everyIndexOpNamesItselfTheValueAndThePosition() {
        Tensor bad = Tensor.of(new long[] {0, 2, 1, 3}, 4);         // 3 is outside an axis of 3, at position 3
        assertEquals("indexSelect: index 3 is out of range for an axis of size 3 (at position 3 of the index)",
                error(() -> x.indexSelect(0, bad)));
        assertEquals("indexSelect: index 3 is out of range for an axis of size 3 (at position 3 of the index)",
                error(() -> x.embedding(bad)));
        assertEquals("indexAdd: index 3 is out of range for an axis of size 3 (at position 3 of the index)",
                error(() -> x.indexAdd(0, bad, Tensor.zeros(DType.F32, 4, 4))));
        Tensor badRows = Tensor.of(new long[] {0, 1, 4, 0, -1, 0}, 3, 2); // 4 at position 2 first, for an axis of 4
        assertEquals("gather: index 4 is out of range for an axis of size 4 (at position 2 of the index)",
                error(() -> x.gather(1, badRows)));
        assertEquals("scatterAdd: index 4 is out of range for an axis of size 4 (at position 2 of the index)",
                error(() -> x.scatterAdd(1, badRows, Tensor.zeros(DType.F32, 3, 2))));
        assertEquals("oneHot: index -1 is out of range for an axis of size 2 (at position 1 of the index)",
                error(() -> Tensor.of(new long[] {1, -1}, 2).oneHot(2)));
    }

    @Test
    void checksI32AndStridedIndicesInRowMajorOrder() {
        Backend cpu = Backend.of(Device.cpu());
        Tensor i32 = Tensor.of(new int[] {0, 1, 7}, 3);
        assertEquals("t: index 7 is out of range for an axis of size 7 (at position 2 of the index)",
                assertThrows(IllegalArgumentException.class, () -> cpu.checkIndex("t", i32, 7)).getMessage());
        assertDoesNotThrow(() -> cpu.checkIndex("t", i32, 8));
        // [[0, 5], [1, 2]] transposed is [[0, 1], [5, 2]]: 5 comes at row-major position 2
        Tensor t = Tensor.of(new long[] {0, 5, 1, 2}, 2, 2).mT();
        assertEquals("t: index 5 is out of range for an axis of size 5 (at position 2 of the index)",
                assertThrows(IllegalArgumentException.class, () -> cpu.checkIndex("t", t, 5)).getMessage());
        assertDoesNotThrow(() -> cpu.checkIndex("t", Tensor.empty(DType.I64, 0), 0));
    }
}
