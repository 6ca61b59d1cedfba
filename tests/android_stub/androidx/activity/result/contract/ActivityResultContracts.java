package androidx.activity.result.contract;
import android.content.Context;
import android.net.Uri;
import androidx.activity.result.PickVisualMediaRequest;
public final class ActivityResultContracts {
    public static class GetContent extends ActivityResultContract<String, Uri> {
        public GetContent() { throw new RuntimeException("Stub!"); }
    }
    public static class PickVisualMedia extends ActivityResultContract<PickVisualMediaRequest, Uri> {
        public PickVisualMedia() { throw new RuntimeException("Stub!"); }
        public static boolean isPhotoPickerAvailable(Context context) { throw new RuntimeException("Stub!"); }
        public interface VisualMediaType {}
        public static final class ImageOnly implements VisualMediaType {
            public static final ImageOnly INSTANCE = null;
            private ImageOnly() {}
        }
    }
}
