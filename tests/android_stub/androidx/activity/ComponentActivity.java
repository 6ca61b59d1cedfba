package androidx.activity;
import android.app.Activity;
import androidx.activity.result.ActivityResultCallback;
import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContract;
// Real hierarchy: ComponentActivity -> androidx.core.app.ComponentActivity -> Activity.
public class ComponentActivity extends Activity {
    public final <I, O> ActivityResultLauncher<I> registerForActivityResult(
            ActivityResultContract<I, O> contract, ActivityResultCallback<O> callback) { throw new RuntimeException("Stub!"); }
}
