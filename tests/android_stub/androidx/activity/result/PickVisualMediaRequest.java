package androidx.activity.result;
import androidx.activity.result.contract.ActivityResultContracts;
public final class PickVisualMediaRequest {
    public static final class Builder {
        public Builder() { throw new RuntimeException("Stub!"); }
        public Builder setMediaType(ActivityResultContracts.PickVisualMedia.VisualMediaType mediaType) { throw new RuntimeException("Stub!"); }
        public PickVisualMediaRequest build() { throw new RuntimeException("Stub!"); }
    }
}
