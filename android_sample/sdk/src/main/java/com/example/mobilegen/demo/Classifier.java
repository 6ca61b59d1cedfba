package com.example.mobilegen.demo;

import android.content.Context;
import android.content.res.AssetManager;
import android.graphics.Bitmap;
import android.util.Log;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONException;

/**
 * Image classifier for model.tflite, run by the mobilegen engine: OpenGL ES 3.1
 * compute shaders, or a CPU backend with the same arithmetic.
 *
 * <pre>
 * try (Classifier classifier = Classifier.create(context, new Classifier.Options())) {
 *     List&lt;Recognition&gt; top = classifier.classify(bitmap);
 * }
 * </pre>
 *
 * <p>Calls on one instance are serialized; for parallel inference, create one instance per
 * thread. Each instance holds native memory and, on the GPU, an EGL context until {@link
 * #close()}: close it (try-with-resources). One that is garbage collected unclosed is released
 * by a safety net that logs a warning.
 */
public final class Classifier implements AutoCloseable {
    private static final String TAG = "mobilegen.com_example_mobilegen_demo";

    static {
        System.loadLibrary(ModelInfo.NATIVE_LIBRARY);
    }

    /** Where inference runs. */
    public enum Backend {
        /** The GPU when the device has OpenGL ES 3.1 compute and its driver builds the shaders, else the CPU. */
        AUTO,
        GPU,
        CPU;

        // The engine's mobilegen::Backend values, in this order: Auto = 0, Gpu = 1, Cpu = 2.
        int code() {
            return ordinal();
        }
    }

    /** How to create a Classifier. */
    public static final class Options {
        private Backend backend = Backend.AUTO;
        private int topK = 5;

        public Options setBackend(Backend backend) {
            if (backend == null) {
                throw new NullPointerException("backend");
            }
            this.backend = backend;
            return this;
        }

        /** How many results {@link #classify(Bitmap)} returns (at most the number of classes). */
        public Options setTopK(int topK) {
            if (topK < 1) {
                throw new IllegalArgumentException("topK must be at least 1, not " + topK);
            }
            this.topK = topK;
            return this;
        }

        public Backend getBackend() {
            return backend;
        }

        public int getTopK() {
            return topK;
        }
    }

    /**
     * The backend create() chose and, when {@link Backend#AUTO} did not take the GPU, why: for
     * logs and bug reports from devices (the JNI bridge also logs it, tag {@value #TAG}).
     */
    public static final class BackendInfo {
        private final Backend backend;
        private final String renderer;
        private final String fallbackStatus;
        private final String fallbackReason;

        BackendInfo(Backend backend, String renderer, String fallbackStatus, String fallbackReason) {
            this.backend = backend;
            this.renderer = renderer;
            this.fallbackStatus = fallbackStatus;
            this.fallbackReason = fallbackReason;
        }

        /** {@link Backend#GPU} or {@link Backend#CPU}, never AUTO. */
        public Backend getBackend() {
            return backend;
        }

        /**
         * The GPU's GL_RENDERER: of the GPU in use, or of the one AUTO tried and left; empty when
         * no OpenGL ES context was reached.
         */
        public String getRenderer() {
            return renderer;
        }

        /** Whether AUTO fell back to the CPU because the GPU backend failed. */
        public boolean isFallback() {
            return fallbackStatus != null;
        }

        /**
         * Why AUTO fell back: a {@link MobilegenException} status, {@code GpuUnavailable} (no
         * OpenGL ES 3.1 compute) or {@code GpuError} (the driver failed to build or run the
         * shaders); null without a fallback.
         */
        public String getFallbackStatus() {
            return fallbackStatus;
        }

        /** The GPU backend's error message when AUTO fell back; null otherwise. */
        public String getFallbackReason() {
            return fallbackReason;
        }

        @Override
        public String toString() {
            String gpu = renderer.isEmpty() ? "" : " (" + renderer + ")";
            if (!isFallback()) {
                return backend + gpu;
            }
            return backend + ", GPU" + gpu + " failed: " + fallbackStatus + ": " + fallbackReason;
        }
    }

    private final AssetManager assets;
    private final List<String> labels;
    private final int topK;
    // Where the engine writes the scores of classify() and runDebug().
    private final ByteBuffer scores =
            ByteBuffer.allocateDirect(ModelInfo.OUTPUT_BYTES).order(ByteOrder.nativeOrder());
    // Staging for run() with heap buffers, per input and output; allocated on first use.
    private final ByteBuffer[] stagedInputs = new ByteBuffer[ModelInfo.INPUTS.size()];
    private final ByteBuffer[] stagedOutputs = new ByteBuffer[ModelInfo.OUTPUTS.size()];
    private final BackendInfo backendInfo;
    private long handle;

    private Classifier(AssetManager assets, List<String> labels, int topK, long handle) {
        this.assets = assets;
        this.labels = labels;
        this.topK = Math.min(topK, labels.size());
        this.handle = handle;
        String[] info = nativeBackendInfo(handle);
        this.backendInfo = new BackendInfo(Backend.values()[nativeBackend(handle)], info[0], info[1], info[2]);
    }

    /**
     * Loads the model from this library's assets and prepares the backend (on the GPU: compiles
     * the shaders, or loads them from the program cache in the app's cache directory).
     *
     * @throws MobilegenException e.g. {@code GpuUnavailable} when {@link Backend#GPU} was demanded
     *     on a device without OpenGL ES 3.1 compute
     */
    public static Classifier create(Context context, Options options) {
        AssetManager assets = context.getAssets();
        List<String> labels = readLabels(assets);
        File cacheDir = new File(context.getCacheDir(), ModelInfo.SDK_NAME);
        // Without the directory the engine runs without a program cache: not an error.
        cacheDir.mkdirs();
        long handle = nativeCreate(assets, ModelInfo.BLOB_ASSET, options.getBackend().code(), cacheDir.getPath());
        try {
            return new Classifier(assets, labels, options.getTopK(), handle);
        } catch (RuntimeException | Error e) {
            nativeClose(handle);
            throw e;
        }
    }

    /**
     * Classifies a picture: resized (bilinear) to the model input, normalized and quantized as
     * mobilegen's simulator does. Returns the top-K classes, best first.
     */
    public synchronized List<Recognition> classify(Bitmap bitmap) {
        checkImageModel();
        nativeRunBitmap(checkOpen(), argb8888(bitmap), ModelInfo.INPUT_MEAN, ModelInfo.INPUT_STD, scores, null);
        return topRecognitions();
    }

    /**
     * Like {@link #classify(Bitmap)}, and writes every tensor to {@code dir} in mobilegen's dump
     * format ({@code <index>.npy} plus {@code tensors.json}), to compare with {@code mobilegen
     * simulate --dump-dir} using {@code mobilegen compare}.
     */
    public synchronized List<Recognition> runDebug(Bitmap bitmap, File dir) {
        long nativeHandle = checkOpen();
        checkImageModel();
        prepareDump(dir);
        nativeRunBitmap(nativeHandle, argb8888(bitmap), ModelInfo.INPUT_MEAN, ModelInfo.INPUT_STD, scores, dir.getPath());
        return topRecognitions();
    }

    /**
     * Runs raw tensors of a model with one input and one output: {@link #run(ByteBuffer[],
     * ByteBuffer[])} with one buffer each.
     */
    public synchronized void run(ByteBuffer input, ByteBuffer output) {
        run(new ByteBuffer[] {input}, new ByteBuffer[] {output});
    }

    /**
     * Runs raw tensors, one buffer per graph input and output in the model's order ({@link
     * ModelInfo#INPUTS}, {@link ModelInfo#OUTPUTS}): {@code inputs[i]} holds exactly {@code
     * INPUTS.get(i).byteSize()} remaining bytes (NHWC, the tensor's data type); {@code outputs[i]}
     * receives {@code OUTPUTS.get(i).byteSize()} bytes from its position. Multi-byte values are in
     * native byte order. Positions and limits are left unchanged. Direct buffers avoid a copy.
     */
    public synchronized void run(ByteBuffer[] inputs, ByteBuffer[] outputs) {
        runTensors(inputs, outputs, null);
    }

    /**
     * Like {@link #run(ByteBuffer[], ByteBuffer[])}, and writes every tensor to {@code dir} in
     * mobilegen's dump format ({@code <index>.npy} plus {@code tensors.json}).
     */
    public synchronized void runDebug(ByteBuffer[] inputs, ByteBuffer[] outputs, File dir) {
        checkOpen();
        prepareDump(dir);
        runTensors(inputs, outputs, dir.getPath());
    }

    private void runTensors(ByteBuffer[] inputs, ByteBuffer[] outputs, String dumpDir) {
        long nativeHandle = checkOpen();
        List<ModelInfo.TensorSpec> specs = ModelInfo.INPUTS;
        List<ModelInfo.TensorSpec> outSpecs = ModelInfo.OUTPUTS;
        if (inputs.length != specs.size() || outputs.length != outSpecs.size()) {
            throw new IllegalArgumentException(inputs.length + " inputs and " + outputs.length
                    + " outputs given; the model has " + specs.size() + " and " + outSpecs.size());
        }
        ByteBuffer[] in = new ByteBuffer[inputs.length];
        int[] inOffsets = new int[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            int bytes = specs.get(i).byteSize();
            if (inputs[i].remaining() != bytes) {
                throw new IllegalArgumentException("input " + i + " (" + specs.get(i).name() + ") has "
                        + inputs[i].remaining() + " bytes; the model takes " + bytes);
            }
            if (inputs[i].isDirect()) {
                in[i] = inputs[i];
                inOffsets[i] = inputs[i].position();
            } else {
                in[i] = staged(stagedInputs, i, bytes);
                in[i].clear();
                in[i].put(inputs[i].duplicate());
            }
        }
        ByteBuffer[] out = new ByteBuffer[outputs.length];
        int[] outOffsets = new int[outputs.length];
        for (int i = 0; i < outputs.length; i++) {
            int bytes = outSpecs.get(i).byteSize();
            if (outputs[i].remaining() < bytes) {
                throw new IllegalArgumentException("output " + i + " (" + outSpecs.get(i).name() + ") has room for "
                        + outputs[i].remaining() + " bytes; the model writes " + bytes);
            }
            if (outputs[i].isDirect()) {
                out[i] = outputs[i];
                outOffsets[i] = outputs[i].position();
            } else {
                out[i] = staged(stagedOutputs, i, bytes);
            }
        }
        nativeRun(nativeHandle, in, inOffsets, out, outOffsets, dumpDir);
        for (int i = 0; i < outputs.length; i++) {
            if (!outputs[i].isDirect()) {
                out[i].clear();
                outputs[i].duplicate().put(out[i]);
            }
        }
    }

    private static ByteBuffer staged(ByteBuffer[] cache, int i, int bytes) {
        if (cache[i] == null) {
            cache[i] = ByteBuffer.allocateDirect(bytes);
        }
        return cache[i];
    }

    /** Milliseconds the last inference took (on the GPU: including reading the output back). */
    public synchronized double lastInferenceMillis() {
        return nativeLastRunMicros(checkOpen()) / 1000.0;
    }

    /** The backend in use: {@link Backend#GPU} or {@link Backend#CPU}, never AUTO. */
    public synchronized Backend backend() {
        return Backend.values()[nativeBackend(checkOpen())];
    }

    /** The backend in use and, when {@link Backend#AUTO} left the GPU, why (also logged). */
    public BackendInfo getBackendInfo() {
        return backendInfo;
    }

    /** The class labels, in output order. */
    public List<String> labels() {
        return labels;
    }

    /** Releases the native engine; further calls throw IllegalStateException. */
    @Override
    public synchronized void close() {
        if (handle != 0) {
            nativeClose(handle);
            handle = 0;
        }
    }

    /**
     * The safety net for a Classifier that is never closed: releases the native engine (and its
     * EGL context) when the object is collected, and logs a warning, since until then it held
     * native memory the garbage collector does not see. A finalizer, not java.lang.ref.Cleaner:
     * Cleaner needs API 33 and this SDK supports API 24; a PhantomReference queue would need a
     * thread of its own for the same effect. Runs at most once, when no other thread can reach
     * this object, so it needs no lock.
     */
    @Override
    protected void finalize() throws Throwable {
        try {
            if (handle != 0) {
                Log.w(TAG, "a Classifier was garbage collected without close(); releasing its native engine now."
                        + " Call close() (or use try-with-resources) to release it when you are done.");
                nativeClose(handle);
                handle = 0;
            }
        } finally {
            super.finalize();
        }
    }

    // classify() and the Bitmap runDebug() feed one picture to the model's only input.
    private static void checkImageModel() {
        if (ModelInfo.INPUTS.size() != 1) {
            throw new IllegalStateException("the model has " + ModelInfo.INPUTS.size()
                    + " inputs; a Bitmap can feed only a single-input model: use run(ByteBuffer[], ByteBuffer[])");
        }
    }

    // A dump directory holding tensors.json, the index of the <index>.npy files the engine writes.
    private void prepareDump(File dir) {
        if (!dir.isDirectory() && !dir.mkdirs()) {
            throw new MobilegenException("IoError", "cannot create " + dir);
        }
        try {
            copyAsset(ModelInfo.TENSORS_ASSET, new File(dir, "tensors.json"));
        } catch (IOException e) {
            throw new MobilegenException("IoError", "cannot write " + dir + "/tensors.json", e);
        }
    }

    private long checkOpen() {
        if (handle == 0) {
            throw new IllegalStateException("Classifier is closed");
        }
        return handle;
    }

    // The engine reads ARGB_8888 pixels; other configs (RGB_565, HARDWARE, ...) are converted.
    private static Bitmap argb8888(Bitmap bitmap) {
        if (bitmap.isRecycled()) {
            throw new IllegalArgumentException("the Bitmap is recycled");
        }
        if (bitmap.getConfig() == Bitmap.Config.ARGB_8888) {
            return bitmap;
        }
        Bitmap copy = bitmap.copy(Bitmap.Config.ARGB_8888, false);
        if (copy == null) {
            throw new IllegalArgumentException("cannot convert the Bitmap to ARGB_8888");
        }
        return copy;
    }

    // The top-K scores, best first; ties keep the lower class index first.
    private List<Recognition> topRecognitions() {
        int[] best = new int[topK];
        float[] bestScores = new float[topK];
        int count = 0;
        for (int i = 0; i < ModelInfo.NUM_CLASSES; i++) {
            float score = score(i);
            if (count == topK && score <= bestScores[topK - 1]) {
                continue;
            }
            int at = Math.min(count, topK - 1);
            while (at > 0 && bestScores[at - 1] < score) {
                best[at] = best[at - 1];
                bestScores[at] = bestScores[at - 1];
                at--;
            }
            best[at] = i;
            bestScores[at] = score;
            count = Math.min(count + 1, topK);
        }
        List<Recognition> out = new ArrayList<>(count);
        for (int k = 0; k < count; k++) {
            out.add(new Recognition(labels.get(best[k]), best[k], bestScores[k]));
        }
        return out;
    }

    private float score(int i) {
        return scores.getFloat(4 * i);
    }

    // labels.json: a JSON array of strings (labels may hold any character, newlines included).
    private static List<String> readLabels(AssetManager assets) {
        try {
            JSONArray array = new JSONArray(new String(readAsset(assets, ModelInfo.LABELS_ASSET), StandardCharsets.UTF_8));
            if (array.length() != ModelInfo.NUM_CLASSES) {
                throw new MobilegenException("IoError", ModelInfo.LABELS_ASSET + " holds " + array.length()
                        + " labels; the model has " + ModelInfo.NUM_CLASSES + " classes");
            }
            List<String> labels = new ArrayList<>(array.length());
            for (int i = 0; i < array.length(); i++) {
                labels.add(array.getString(i));
            }
            return Collections.unmodifiableList(labels);
        } catch (IOException | JSONException e) {
            throw new MobilegenException("IoError", "cannot read " + ModelInfo.LABELS_ASSET, e);
        }
    }

    private static byte[] readAsset(AssetManager assets, String name) throws IOException {
        try (InputStream in = assets.open(name)) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            byte[] chunk = new byte[16384];
            for (int n; (n = in.read(chunk)) > 0; ) {
                bytes.write(chunk, 0, n);
            }
            return bytes.toByteArray();
        }
    }

    private void copyAsset(String name, File target) throws IOException {
        try (OutputStream out = new FileOutputStream(target)) {
            out.write(readAsset(assets, name));
        }
    }

    private static native long nativeCreate(AssetManager assets, String blobAsset, int backend, String cacheDir);

    private static native void nativeRun(
            long handle, ByteBuffer[] inputs, int[] inputOffsets, ByteBuffer[] outputs, int[] outputOffsets, String dumpDir);

    private static native void nativeRunBitmap(
            long handle, Bitmap bitmap, float mean, float std, ByteBuffer output, String dumpDir);

    private static native double nativeLastRunMicros(long handle);

    private static native int nativeBackend(long handle);

    private static native String[] nativeBackendInfo(long handle);

    private static native void nativeClose(long handle);
}
