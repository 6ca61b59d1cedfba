package com.example.mobilegen.demo;

/**
 * A failure of the mobilegen engine or of its JNI bridge.
 *
 * <p>{@link #getStatus()} names the engine's status: {@code InvalidBlob} (the weights asset is
 * damaged or belongs to another model), {@code InvalidInput} (wrong input size or Bitmap),
 * {@code GpuUnavailable} (the GPU backend was demanded and the device has no OpenGL ES 3.1
 * compute), {@code GpuError}, {@code InvalidArgument}, {@code IoError} (an asset or the dump
 * directory), or, from the bridge itself, {@code OutOfMemory} and {@code InternalError}.
 */
public class MobilegenException extends RuntimeException {
    private static final long serialVersionUID = 1L;

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
