package android.util;
public final class Log {
    public static int w(String tag, String msg) { throw new RuntimeException("Stub!"); }
}
