package com.example.mobilegen.demo.app;

import android.graphics.Bitmap;
import android.graphics.BitmapFactory;
import android.graphics.Matrix;
import android.net.Uri;
import android.os.Bundle;
import android.widget.Button;
import android.widget.ImageView;
import android.widget.Switch;
import android.widget.TextView;
import androidx.activity.ComponentActivity;
import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.PickVisualMediaRequest;
import androidx.activity.result.contract.ActivityResultContracts;
import androidx.exifinterface.media.ExifInterface;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.text.SimpleDateFormat;
import java.util.Date;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import com.example.mobilegen.demo.Classifier;
import com.example.mobilegen.demo.ModelInfo;
import com.example.mobilegen.demo.Recognition;

/**
 * Shows a picture (the bundled sample, or one picked with the system Photo Picker), its top-5
 * classes with scores and the inference time; the GPU switch moves inference between the GPU and
 * the CPU.
 *
 * <p>With "Dump tensors" on, each classification runs through {@link Classifier#runDebug(Bitmap,
 * File)}, which writes every tensor (the graph input included) in mobilegen's dump format into a
 * new folder {@code getExternalFilesDir(null)/mobilegen-dumps/<yyyyMMdd-HHmmss>/}: app-specific
 * storage, written without any permission and readable by adb without root, so that {@code
 * mobilegen pull DIR --target android --package <application id>} fetches it for {@code mobilegen
 * compare}. The results text says where each dump went.
 *
 * <p>Decoding and inference run on one worker thread, never on the UI thread; every failure
 * (an unreadable file, a picture too large to decode, an engine error) is shown in the results
 * text instead of crashing the app.
 */
public class MainActivity extends ComponentActivity {
    private static final String SAMPLE_ASSET = "sample.png";
    private static final int TOP_K = 5;
    // Pictures are decoded at no less than this many times the model input: enough for the
    // resize, without holding a full-resolution photo in memory.
    private static final int DECODE_MARGIN = 2;
    // The folder under getExternalFilesDir(null) that holds one subfolder per dump (what
    // `mobilegen pull` lists).
    private static final String DUMPS_DIR = "mobilegen-dumps";

    // Every decode and Classifier call runs on this thread, in order, off the UI thread.
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private Classifier classifier;          // worker thread only
    private Classifier.Backend classifierBackend;  // what `classifier` was created with

    // The system Photo Picker (MediaStore.ACTION_PICK_IMAGES) where the device has it; else the
    // ACTION_GET_CONTENT document picker. Both are registered before the activity starts, as
    // the Activity Result API requires.
    private ActivityResultLauncher<PickVisualMediaRequest> photoPicker;
    private ActivityResultLauncher<String> contentPicker;

    private ImageView image;
    private TextView results;
    private Switch gpu;
    private Switch dump;
    private Bitmap picture;  // UI thread only

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        image = findViewById(R.id.image);
        results = findViewById(R.id.results);
        gpu = findViewById(R.id.gpu);
        dump = findViewById(R.id.dump);
        Button pick = findViewById(R.id.pick);

        photoPicker = registerForActivityResult(new ActivityResultContracts.PickVisualMedia(), this::onPicked);
        contentPicker = registerForActivityResult(new ActivityResultContracts.GetContent(), this::onPicked);
        pick.setOnClickListener(view -> pickImage());
        gpu.setOnCheckedChangeListener((view, checked) -> classify());
        // Turning the switch on dumps the picture shown right away.
        dump.setOnCheckedChangeListener((view, checked) -> classify());

        results.setText(R.string.working);
        worker.execute(() -> {
            try {
                Bitmap sample;
                try (InputStream in = getAssets().open(SAMPLE_ASSET)) {
                    sample = BitmapFactory.decodeStream(in);
                }
                if (sample == null) {
                    throw new IOException("not a picture");
                }
                onUiThread(() -> show(sample));
            } catch (Exception | OutOfMemoryError e) {
                showFailure("Cannot open " + SAMPLE_ASSET, e);
            }
        });
    }

    @Override
    protected void onDestroy() {
        worker.execute(this::closeClassifier);
        worker.shutdown();
        super.onDestroy();
    }

    private void pickImage() {
        try {
            if (ActivityResultContracts.PickVisualMedia.isPhotoPickerAvailable(this)) {
                photoPicker.launch(new PickVisualMediaRequest.Builder()
                        .setMediaType(ActivityResultContracts.PickVisualMedia.ImageOnly.INSTANCE)
                        .build());
            } else {
                contentPicker.launch("image/*");
            }
        } catch (RuntimeException e) {  // e.g. ActivityNotFoundException: no picker at all
            showFailure("Cannot pick a picture", e);
        }
    }

    // A picked picture (null: the user cancelled): decoded on the worker thread.
    private void onPicked(Uri uri) {
        if (uri == null) {
            return;
        }
        results.setText(R.string.working);
        worker.execute(() -> {
            try {
                Bitmap picked = decodeUpright(uri);
                onUiThread(() -> show(picked));
            } catch (Exception | OutOfMemoryError e) {
                showFailure("Cannot open " + uri, e);
            }
        });
    }

    // Worker thread: the picture at `uri`, subsampled to about DECODE_MARGIN times the model input
    // and turned upright as its EXIF orientation says (cameras store most photos sideways).
    private Bitmap decodeUpright(Uri uri) throws IOException {
        BitmapFactory.Options bounds = new BitmapFactory.Options();
        bounds.inJustDecodeBounds = true;
        try (InputStream in = open(uri)) {
            BitmapFactory.decodeStream(in, null, bounds);
        }
        if (bounds.outWidth <= 0 || bounds.outHeight <= 0) {
            throw new IOException("not a picture this device can decode");
        }
        int orientation;
        try (InputStream in = open(uri)) {
            orientation = new ExifInterface(in).getAttributeInt(
                    ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL);
        }
        // A quarter turn swaps the sides that must cover the model input.
        boolean swapped = orientation == ExifInterface.ORIENTATION_ROTATE_90
                || orientation == ExifInterface.ORIENTATION_ROTATE_270
                || orientation == ExifInterface.ORIENTATION_TRANSPOSE
                || orientation == ExifInterface.ORIENTATION_TRANSVERSE;
        int needWidth = DECODE_MARGIN * (swapped ? ModelInfo.INPUT_HEIGHT : ModelInfo.INPUT_WIDTH);
        int needHeight = DECODE_MARGIN * (swapped ? ModelInfo.INPUT_WIDTH : ModelInfo.INPUT_HEIGHT);
        BitmapFactory.Options options = new BitmapFactory.Options();
        options.inSampleSize = 1;
        while (bounds.outWidth / (2 * options.inSampleSize) >= needWidth
                && bounds.outHeight / (2 * options.inSampleSize) >= needHeight) {
            options.inSampleSize *= 2;
        }
        options.inPreferredConfig = Bitmap.Config.ARGB_8888;
        Bitmap decoded;
        try (InputStream in = open(uri)) {
            decoded = BitmapFactory.decodeStream(in, null, options);
        }
        if (decoded == null) {
            throw new IOException("not a picture this device can decode");
        }
        return upright(decoded, orientation);
    }

    private InputStream open(Uri uri) throws IOException {
        InputStream in = getContentResolver().openInputStream(uri);
        if (in == null) {
            throw new IOException("the provider returned no data");
        }
        return in;
    }

    // `bitmap` transformed as an EXIF orientation value says (TIFF 6.0 / EXIF 2.3, tag 0x0112).
    static Bitmap upright(Bitmap bitmap, int orientation) {
        Matrix matrix = new Matrix();
        switch (orientation) {
            case ExifInterface.ORIENTATION_FLIP_HORIZONTAL:
                matrix.setScale(-1, 1);
                break;
            case ExifInterface.ORIENTATION_ROTATE_180:
                matrix.setRotate(180);
                break;
            case ExifInterface.ORIENTATION_FLIP_VERTICAL:
                matrix.setScale(1, -1);
                break;
            case ExifInterface.ORIENTATION_TRANSPOSE:
                matrix.setRotate(90);
                matrix.postScale(-1, 1);
                break;
            case ExifInterface.ORIENTATION_ROTATE_90:
                matrix.setRotate(90);
                break;
            case ExifInterface.ORIENTATION_TRANSVERSE:
                matrix.setRotate(-90);
                matrix.postScale(-1, 1);
                break;
            case ExifInterface.ORIENTATION_ROTATE_270:
                matrix.setRotate(-90);
                break;
            default:  // NORMAL, UNDEFINED or a value outside the standard: as stored
                return bitmap;
        }
        Bitmap turned = Bitmap.createBitmap(bitmap, 0, 0, bitmap.getWidth(), bitmap.getHeight(), matrix, true);
        if (turned != bitmap) {
            bitmap.recycle();
        }
        return turned;
    }

    // UI thread.
    private void show(Bitmap bitmap) {
        picture = bitmap;
        image.setImageBitmap(bitmap);
        classify();
    }

    // UI thread: classifies the picture shown, on the worker thread.
    private void classify() {
        if (picture == null) {
            return;
        }
        final Bitmap input = picture;
        // AUTO: the GPU when the device has OpenGL ES 3.1 compute; the result names the one used
        // and, when AUTO fell back to the CPU, why.
        final Classifier.Backend backend = gpu.isChecked() ? Classifier.Backend.AUTO : Classifier.Backend.CPU;
        final boolean dumping = dump.isChecked();
        worker.execute(() -> {
            try {
                String text = classifyOnWorker(input, backend, dumping);
                onUiThread(() -> results.setText(text));
            } catch (Exception | OutOfMemoryError e) {
                closeClassifier();  // created again on the next try
                showFailure("Classification failed", e);
            }
        });
    }

    // Worker thread: the text to show. `dumping`: through runDebug, into a new dump folder.
    private String classifyOnWorker(Bitmap input, Classifier.Backend backend, boolean dumping) throws IOException {
        if (classifier == null || classifierBackend != backend) {
            closeClassifier();
            classifier = Classifier.create(this, new Classifier.Options().setBackend(backend).setTopK(TOP_K));
            classifierBackend = backend;
        }
        File dumpDir = dumping ? newDumpDirectory() : null;
        List<Recognition> top = dumpDir != null ? classifier.runDebug(input, dumpDir) : classifier.classify(input);
        StringBuilder text = new StringBuilder(String.format(
                Locale.ROOT, "%s, %.1f ms%n%n", classifier.getBackendInfo(), classifier.lastInferenceMillis()));
        for (Recognition r : top) {
            text.append(String.format(Locale.ROOT, "%.4f  %s%n", r.getScore(), r.getLabel()));
        }
        if (dumpDir != null) {
            // The timing above includes reading every tensor back: dumps are slower.
            text.append(String.format(Locale.ROOT, "%nTensors dumped to %s%nOn a computer: mobilegen pull DIR"
                    + " --target android --package %s%n", dumpDir.getPath(), getPackageName()));
        }
        return text.toString();
    }

    // Worker thread: a new folder for one dump, named by the time of the run (yyyyMMdd-HHmmss;
    // "-2", "-3", ... appended when two runs share a second), so names sort by time and `mobilegen
    // pull` takes the latest. runDebug creates it.
    private File newDumpDirectory() throws IOException {
        File external = getExternalFilesDir(null);
        if (external == null) {
            throw new IOException("shared storage is not available (getExternalFilesDir returned null)");
        }
        File root = new File(external, DUMPS_DIR);
        String stamp = new SimpleDateFormat("yyyyMMdd-HHmmss", Locale.ROOT).format(new Date());
        File dir = new File(root, stamp);
        for (int n = 2; dir.exists(); n++) {
            dir = new File(root, stamp + "-" + n);
        }
        return dir;
    }

    private void closeClassifier() {
        if (classifier != null) {
            classifier.close();
            classifier = null;
        }
    }

    // Any thread: `what` and the failure, in the results text.
    private void showFailure(String what, Throwable failure) {
        String message = failure.getMessage() != null ? failure.getMessage() : failure.getClass().getSimpleName();
        onUiThread(() -> results.setText(what + ": " + message));
    }

    // Runs `action` on the UI thread unless the activity is gone.
    private void onUiThread(Runnable action) {
        runOnUiThread(() -> {
            if (!isFinishing() && !isDestroyed()) {
                action.run();
            }
        });
    }
}
