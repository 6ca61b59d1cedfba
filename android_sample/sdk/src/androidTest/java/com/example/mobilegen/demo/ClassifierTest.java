package com.example.mobilegen.demo;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.assertArrayEquals;

import android.content.Context;
import androidx.test.ext.junit.runners.AndroidJUnit4;
import androidx.test.platform.app.InstrumentationRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.Assume;
import org.junit.Test;
import org.junit.runner.RunWith;

/**
 * The engine on this device against mobilegen's simulator: golden_input.bin (the sample picture,
 * preprocessed) must give golden_output.bin, which the simulator computed when the project was
 * generated.
 * <p>Integer kernels are bit-exact: both backends must reproduce it byte for byte.
 */
@RunWith(AndroidJUnit4.class)
public class ClassifierTest {
    @Test
    public void gpuMatchesSimulator() throws IOException {
        checkGolden(Classifier.Backend.GPU);
    }

    @Test
    public void cpuMatchesSimulator() throws IOException {
        checkGolden(Classifier.Backend.CPU);
    }

    /** AUTO names the backend it took and, when it left the GPU, why. */
    @Test
    public void autoReportsItsBackend() {
        Context context = InstrumentationRegistry.getInstrumentation().getContext();
        try (Classifier classifier = Classifier.create(context, new Classifier.Options())) {
            Classifier.BackendInfo info = classifier.getBackendInfo();
            assertEquals(classifier.backend(), info.getBackend());
            if (info.getBackend() == Classifier.Backend.GPU) {
                assertFalse(info.toString(), info.isFallback());
                assertFalse("the GPU's renderer", info.getRenderer().isEmpty());
            } else {
                assertTrue(info.toString(), info.isFallback());
                assertTrue(info.toString(), MobilegenException.GPU_UNAVAILABLE.equals(info.getFallbackStatus())
                        || MobilegenException.GPU_ERROR.equals(info.getFallbackStatus()));
                assertFalse(info.toString(), info.getFallbackReason().isEmpty());
            }
        }
    }

    private static void checkGolden(Classifier.Backend backend) throws IOException {
        Context context = InstrumentationRegistry.getInstrumentation().getContext();
        byte[] input = readAsset(context, "golden_input.bin");
        byte[] expected = readAsset(context, "golden_output.bin");
        assertEquals(ModelInfo.INPUT_BYTES, input.length);
        assertEquals(ModelInfo.OUTPUT_BYTES, expected.length);

        Classifier classifier;
        try {
            classifier = Classifier.create(context, new Classifier.Options().setBackend(backend));
        } catch (MobilegenException e) {
            Assume.assumeFalse("no OpenGL ES 3.1 compute on this device",
                    MobilegenException.GPU_UNAVAILABLE.equals(e.getStatus()));
            throw e;
        }
        try {
            assertEquals(backend, classifier.backend());
            // The golden files are little-endian, like every Android ABI.
            ByteBuffer in = ByteBuffer.allocateDirect(input.length).order(ByteOrder.LITTLE_ENDIAN);
            in.put(input).rewind();
            ByteBuffer out = ByteBuffer.allocateDirect(expected.length).order(ByteOrder.LITTLE_ENDIAN);
            classifier.run(in, out);
            byte[] actual = new byte[expected.length];
            out.get(actual);
            assertArrayEquals(backend + " output differs from the simulator", expected, actual);
        } finally {
            classifier.close();
        }
    }

    private static byte[] readAsset(Context context, String name) throws IOException {
        try (InputStream in = context.getAssets().open(name)) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            byte[] chunk = new byte[16384];
            for (int n; (n = in.read(chunk)) > 0; ) {
                bytes.write(chunk, 0, n);
            }
            return bytes.toByteArray();
        }
    }
}
