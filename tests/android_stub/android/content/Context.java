package android.content;
import android.content.res.AssetManager;
import java.io.File;
public abstract class Context {
    public abstract AssetManager getAssets();
    public abstract File getCacheDir();
    public abstract File getExternalFilesDir(String type);
    public abstract String getPackageName();
    public abstract ContentResolver getContentResolver();
    public abstract Context getApplicationContext();
}
