package org.junit;
public class Assume {
    public static void assumeFalse(String message, boolean b) { throw new RuntimeException("Stub!"); }
    public static void assumeTrue(String message, boolean b) { throw new RuntimeException("Stub!"); }
}
