package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class MatmulTest {
    @Test
    void batchedStridesDefaultToPackedMatricesAndExtentsCoverTheLastOne() {
        Matmul op = Matmul.of(DataType.BF16, 5, 7, 3).batched(4);
        assertEquals(15, op.strideA());
        assertEquals(21, op.strideB());
        assertEquals(35, op.strideC());
        assertEquals(4 * 15, op.elementsA());
        Matmul shared = op.strides(15, 0, 35);
        assertEquals(21, shared.elementsB(), "a broadcast B is one matrix");
    }

    @Test
    void invalidShapesAreRejectedWithTheirValues() {
        var e = assertThrows(IllegalArgumentException.class, () -> Matmul.of(DataType.F32, 0, 4, 4));
        assertTrue(e.getMessage().contains("m=0"), e.getMessage());
        var overlap = assertThrows(IllegalArgumentException.class, () -> Matmul.of(DataType.F32, 4, 4, 4).batched(2).strides(16, 16, 8));
        assertTrue(overlap.getMessage().contains("C's must be at least m*n=16"), overlap.getMessage());
    }
}
