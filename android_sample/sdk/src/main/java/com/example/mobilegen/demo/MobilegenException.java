package com.example.mobilegen.demo;

/**
 * A failure of the mobilegen engine or of its JNI bridge.
 *
 * <p>{@link #getStatus()} names the engine's status, one of the constants below: {@link
 * #INVALID_BLOB} (the weights asset is damaged or belongs to another model), {@link
 * #INVALID_INPUT} (wrong input size or Bitmap), {@link #GPU_UNAVAILABLE} (the GPU backend was
 * demanded and the device has no OpenGL ES 3.1 compute), {@link #GPU_ERROR}, {@link
 * #INVALID_ARGUMENT}, {@link #IO_ERROR} (an asset or the dump directory), {@link #OUT_OF_MEMORY}
 * or {@link #INTERNAL_ERROR}.
 *
 * <p>{@link #OUT_OF_MEMORY}: a native allocation failed (the engine's arenas, GPU buffers). It is
 * reported as this exception, not as {@link OutOfMemoryError}: the Java heap is fine, the engine
 * released what it had allocated, and an app can recover (free memory, use a smaller model, or
 * retry with {@link Classifier.Backend#CPU}), which Android code does not expect of an Error.
 */
public class MobilegenException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public static final String INVALID_BLOB = "InvalidBlob";
    public static final String INVALID_INPUT = "InvalidInput";
    public static final String GPU_UNAVAILABLE = "GpuUnavailable";
    public static final String GPU_ERROR = "GpuError";
    public static final String INVALID_ARGUMENT = "InvalidArgument";
    public static final String IO_ERROR = "IoError";
    public static final String OUT_OF_MEMORY = "OutOfMemory";
    /** A C++ exception other than an allocation failure (a bug: please report it). */
    public static final String INTERNAL_ERROR = "InternalError";

    private final String status;

    /** Also called from the JNI bridge: keep the signature. */
    public MobilegenException(String status, String message) {
        super(status + ": " + message);
        this.status = status;
    }

    public MobilegenException(String status, String message, Throwable cause) {
        super(status + ": " + message, cause);
        this.status = status;
    }

    /** The status name, e.g. {@code "GpuUnavailable"}. */
    public String getStatus() {
        return status;
    }
}
