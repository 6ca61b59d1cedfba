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
 * The engine on this device against mobilegen's simulator: golden_input<n>.bin (input 0: the
 * sample picture, preprocessed) must give golden_output<n>.bin for every graph output, which the
 * simulator computed when the project was generated.
 * <p>Integer kernels are bit-exact: both backends must reproduce every output byte for byte.
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
        // The golden files are little-endian, like every Android ABI.
        ByteBuffer[] inputs = new ByteBuffer[ModelInfo.INPUTS.size()];
        for (int n = 0; n < inputs.length; n++) {
            byte[] input = readAsset(context, "golden_input" + n + ".bin");
            assertEquals(ModelInfo.INPUTS.get(n).byteSize(), input.length);
            inputs[n] = ByteBuffer.allocateDirect(input.length).order(ByteOrder.LITTLE_ENDIAN);
            inputs[n].put(input).rewind();
        }
        ByteBuffer[] outputs = new ByteBuffer[ModelInfo.OUTPUTS.size()];
        for (int n = 0; n < outputs.length; n++) {
            outputs[n] = ByteBuffer.allocateDirect(ModelInfo.OUTPUTS.get(n).byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        }

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
            classifier.run(inputs, outputs);
            for (int n = 0; n < outputs.length; n++) {
                byte[] expected = readAsset(context, "golden_output" + n + ".bin");
                checkOutput(backend + " output " + n, ModelInfo.OUTPUTS.get(n), outputs[n], expected);
            }
        } finally {
            classifier.close();
        }
    }

    private static void checkOutput(String what, ModelInfo.TensorSpec spec, ByteBuffer out, byte[] expected) {
        assertEquals(spec.byteSize(), expected.length);
        byte[] actual = new byte[expected.length];
        out.get(actual);
        assertArrayEquals(what + " differs from the simulator", expected, actual);
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
